"""OpenAI-format types: the chat request, the completion and its stream chunks."""

from polyrelay.types.chat import *  # noqa: F403
from polyrelay.types.chat import __all__ as _chat_all
from polyrelay.types.completion import *  # noqa: F403
from polyrelay.types.completion import __all__ as _completion_all

__all__ = [*_chat_all, *_completion_all]
