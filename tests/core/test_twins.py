"""polyrelay._twins: objects built on a layout twin are exactly what the class's own __init__ builds."""

from __future__ import annotations

import attrs
import pytest

from polyrelay._twins import maker, twin
from polyrelay.provider import CallContext
from polyrelay.transport import Timeouts
from polyrelay.types.completion import Attempt, ResponseMeta


@attrs.frozen(kw_only=True, weakref_slot=False)
class _Point:
    x: int
    y: int = 0
    tags: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)  # keeps its __weakref__ slot: no twin, the descriptors are used
class _WithWeakref:
    x: int
    y: int = 0


@pytest.mark.parametrize("cls", [_Point, _WithWeakref])
def test_made_objects_equal_init_objects_and_stay_frozen(cls: type) -> None:
    make = maker(cls, tuple(f.name for f in attrs.fields(cls)))
    args = (1, 2, ("a",)) if cls is _Point else (1, 2)
    made = make(*args)
    assert type(made) is cls
    assert made == cls(**dict(zip([f.name for f in attrs.fields(cls)], args, strict=True)))
    assert hash(made) == hash(cls(**dict(zip([f.name for f in attrs.fields(cls)], args, strict=True))))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        made.x = 5
    assert (twin(cls) is None) is (cls is _WithWeakref)


def test_a_maker_refuses_classes_whose_fields_or_init_differ_from_what_the_caller_expects() -> None:
    with pytest.raises(TypeError, match="fields"):
        maker(_Point, ("x", "y"))

    @attrs.frozen(weakref_slot=False)
    class Checked:
        x: int = attrs.field(validator=attrs.validators.instance_of(int))

    with pytest.raises(TypeError, match="more than store"):
        maker(Checked, ("x",))
    with pytest.raises(TypeError, match="caches its hash"):
        maker(Timeouts, ("connect", "first_byte", "idle", "total"))


def test_the_routers_objects_have_twins() -> None:
    for cls in (CallContext, Attempt, ResponseMeta):
        assert twin(cls) is not None, cls
    make = maker(Attempt, tuple(f.name for f in attrs.fields(Attempt)))
    made = make("p", "m", "success", None, None, None, 0.5, None)
    assert made == Attempt(provider="p", model="m", outcome="success", latency=0.5)
    assert repr(made) == repr(Attempt(provider="p", model="m", outcome="success", latency=0.5))


def test_a_maker_of_a_mutable_class_stores_directly_and_the_call_state_starts_fresh() -> None:
    from polyrelay._failover import CallState, new_call
    from polyrelay.policy import Policy
    from polyrelay.types._converters import parse_request

    request = parse_request({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    made = new_call("m", request, Policy(), None, 10.0, False, {}, 4.0)
    init = CallState(requested_model="m", request=request, policy=Policy(), deadline=10.0, started=4.0)
    assert type(made) is CallState
    assert attrs.asdict(made, recurse=False) == attrs.asdict(init, recurse=False)
    # What a call accumulates is in immutable tuples (shared while empty), never in a container two calls share.
    assert made.attempts == made.errors == made.tried == ()
    assert all(type(v) is not list and type(v) is not set for v in attrs.asdict(made, recurse=False).values())
