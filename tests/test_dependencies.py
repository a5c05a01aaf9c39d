"""Dependency order by table: dependencies first, cycles and missing ones refused."""

import pytest

from spec_kit_runtime.dependencies import dependency_order, dependents_of, may_stop


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


@pytest.mark.parametrize(("graph", "stopped", "now"), [
    ({}, set(), []),
    ({"a": [], "b": []}, set(), ["a", "b"]),  # independent: together
    ({"app": ["db"], "db": []}, set(), ["app"]),
    ({"app": ["db"], "db": []}, {"app"}, ["db"]),
    ({"app": ["db"], "db": []}, {"app", "db"}, []),
    ({"c": ["b"], "b": ["a"], "a": [], "x": []}, set(), ["c", "x"]),
    ({"d": ["b", "c"], "b": ["a"], "c": ["a"], "a": []}, {"d"}, ["b", "c"]),
    ({"d": ["b", "c"], "b": ["a"], "c": ["a"], "a": []}, {"d", "b"}, ["c"]),
    ({"a": ["b"], "b": ["a"], "c": ["a"]}, set(), ["a", "b", "c"]),  # a cycle keeps no order
    ({"a": ["a"]}, set(), ["a"]),
])
def test_which_plugins_may_stop_now(graph: dict[str, list[str]], stopped: set[str],
                                    now: list[str]) -> None:
    assert may_stop(graph, stopped) == now
