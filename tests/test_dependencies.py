"""Dependency order by table: dependencies first, cycles and missing ones refused."""

import pytest

from spec_kit_runtime.policy.dependencies import dependency_order, dependents_of, may_stop


@pytest.mark.parametrize(("graph", "order", "refused"), [
    ({}, (), {}),
    ({"a": [], "b": []}, ("a", "b"), {}),
    ({"app": ["db"], "db": []}, ("db", "app"), {}),
    ({"c": ["b"], "b": ["a"], "a": []}, ("a", "b", "c"), {}),
    ({"d": ["b", "c"], "b": ["a"], "c": ["a"], "a": []}, ("a", "b", "c", "d"), {}),
    ({"a": ["ghost"], "b": []}, ("b",), {"a": "needs 'ghost', which is not there"}),
    ({"a": ["b"], "b": ["a"], "c": []}, ("c",),
     {"a": "dependency cycle a -> b -> a", "b": "dependency cycle a -> b -> a"}),
    ({"a": ["a"]}, (), {"a": "dependency cycle a -> a"}),
    ({"top": ["mid"], "mid": ["ghost"]}, (),
     {"mid": "needs 'ghost', which is not there", "top": "needs 'mid', which was refused"}),
])
def test_dependency_order(graph: dict[str, list[str]], order: tuple[str, ...],
                          refused: dict[str, str]) -> None:
    result = dependency_order(graph)
    assert result.order == order
    assert result.refused == refused


def test_dependents_in_start_order() -> None:
    graph = {"db": [], "cache": ["db"], "api": ["cache"], "ui": ["api"], "other": []}
    assert dependents_of("db", graph) == ["cache", "api", "ui"]
    assert dependents_of("api", graph) == ["ui"]
    assert dependents_of("other", graph) == []


@pytest.mark.parametrize(("graph", "now"), [
    ({}, []),
    ({"a": [], "b": []}, ["a", "b"]),  # independent: together
    ({"app": ["db"], "db": []}, ["app"]),
    ({"db": []}, ["db"]),  # app has stopped
    ({"c": ["b"], "b": ["a"], "a": [], "x": []}, ["c", "x"]),
    ({"b": ["a"], "c": ["a"], "a": []}, ["b", "c"]),
    ({"c": ["a"], "a": []}, ["c"]),
    # a missing dependency holds up nobody, but the plugin still stops before its present one
    ({"x": ["d", "missing"], "d": []}, ["x"]),
    ({"a": ["b"], "b": ["a"], "c": ["a"]}, ["c"]),  # c first; then the cycle, all at once
    ({"a": ["b"], "b": ["a"]}, ["a", "b"]),
    ({"a": ["a"]}, ["a"]),
    # only the cycle is released: d, which a needs, still waits for a
    ({"a": ["b", "d"], "b": ["a"], "d": []}, ["a", "b"]),
])
def test_which_plugins_may_stop_now(graph: dict[str, list[str]], now: list[str]) -> None:
    assert may_stop(graph) == now
