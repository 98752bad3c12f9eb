"""The gateway's caches of what moto recomputes on every request (issue 16)."""

from __future__ import annotations

import inspect

from amibake.core.local import gateway


def _moto_names(clazz: type) -> frozenset[str]:
    return frozenset(name for name, _ in inspect.getmembers(clazz, inspect.isfunction))


def test_method_names_follow_methods_added_replaced_and_removed() -> None:
    class Base:
        def describe_things(self) -> str:
            return "base"

    class Answers(Base):
        def run_things(self) -> str:
            return "run"

    assert gateway.method_names(Answers) == {"describe_things", "run_things"}

    def stop_things(self: Answers) -> str:
        return "stop"

    Answers.stop_things = stop_things  # type: ignore[attr-defined]  # an action added later
    assert gateway.method_names(Answers) == {"describe_things", "run_things", "stop_things"}

    def patched(self: Base) -> str:
        return "patched"

    Base.describe_things = patched  # type: ignore[method-assign]  # replaced, as moto_ext does
    assert gateway.method_names(Answers) == _moto_names(Answers)

    def extra(self: Base) -> str:
        return "extra"

    Base.extra_action = extra  # type: ignore[attr-defined]  # added to a base class
    assert "extra_action" in gateway.method_names(Answers)
    del Answers.run_things
    assert gateway.method_names(Answers) == _moto_names(Answers)
    assert "run_things" not in gateway.method_names(Answers)


def test_moto_sees_the_cached_listings_with_the_same_answers() -> None:
    from moto import backends
    from moto.core import responses
    from moto.ec2.responses import EC2Response

    gateway.install_moto_caches()
    gateway.install_moto_caches()  # idempotent: the original listing is kept once
    assert backends.list_of_moto_modules is gateway._moto_modules
    listed = tuple(gateway._moto_listing[0]())
    assert backends.list_of_moto_modules() == listed
    assert "ec2" in listed and "sts" in listed
    assert responses.method_names_from_class is gateway.method_names
    assert gateway.method_names(EC2Response) == _moto_names(EC2Response)
