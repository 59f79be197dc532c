"""Helpers shared by workflow providers (Dify, Coze, and third-party ones): following a streamed run in the
background (:mod:`polyrelay.workflows.live`) and finding file outputs in structured results
(:mod:`polyrelay.workflows.outputs`)."""
