"""mnh_guest.oracle.match.compare, and a Prediction's two models (oracle.model)."""

from __future__ import annotations

from typing import Any

from mnh_guest.backends.fanotify import FanotifyBackend
from mnh_guest.oracle import watch_queue
from mnh_guest.oracle.match import compare
from mnh_guest.oracle.model import Prediction, describe_disagreement


def fan(event: str, mnt_id: int) -> dict[str, Any]:
    return {"kind": "fanotify", "event": event, "mnt_id": mnt_id, "pid": 1}


def cmp(expected: list[dict[str, Any]], received: list[dict[str, Any]]
        ) -> dict[str, list[Any]]:
    return compare(expected, received, FanotifyBackend.key, FanotifyBackend.identity)


def test_compare_all_matched() -> None:
    exp = [{"event": "ATTACH", "mnt_id": 1}, {"event": "DETACH", "mnt_id": 2}]
    got = [fan("DETACH", 2), fan("ATTACH", 1)]          # order does not matter
    assert cmp(exp, got) == {"missing": [], "unexpected": [], "wrong": [],
                             "decode_errors": []}


def test_compare_missing_and_unexpected() -> None:
    exp = [{"event": "ATTACH", "mnt_id": 1}, {"event": "ATTACH", "mnt_id": 2}]
    got = [fan("ATTACH", 1), fan("DETACH", 3)]
    d = cmp(exp, got)
    assert d["missing"] == [{"event": "ATTACH", "mnt_id": 2}]
    assert d["unexpected"] == [fan("DETACH", 3)]
    assert d["wrong"] == []


def test_compare_same_id_different_event_is_wrong() -> None:
    exp = [{"event": "ATTACH|DETACH", "mnt_id": 5}, {"event": "ATTACH", "mnt_id": 6}]
    got = [fan("ATTACH", 5), fan("ATTACH", 6)]
    d = cmp(exp, got)
    assert d["wrong"] == [{"expected": {"event": "ATTACH|DETACH", "mnt_id": 5},
                           "received": fan("ATTACH", 5)}]
    assert d["missing"] == [] and d["unexpected"] == []


def test_compare_duplicates_count() -> None:
    exp = [{"event": "ATTACH", "mnt_id": 1}]
    got = [fan("ATTACH", 1), fan("ATTACH", 1)]
    d = cmp(exp, got)
    assert d["unexpected"] == [fan("ATTACH", 1)]
    assert d["missing"] == [] and d["wrong"] == []
    d2 = cmp(exp * 2, [fan("ATTACH", 1)])
    assert d2["missing"] == [{"event": "ATTACH", "mnt_id": 1}]


def test_compare_sets_decode_errors_apart() -> None:
    err = {"kind": "decode-error", "offset": 40, "message": "truncated"}
    d = cmp([{"event": "ATTACH", "mnt_id": 1}], [fan("ATTACH", 1), err])
    assert d == {"missing": [], "unexpected": [], "wrong": [], "decode_errors": [err]}


def wq(event: str, watch_id: int, trig: int, aux: int, *flags: str) -> dict[str, Any]:
    return {"kind": "mount", "event": event, "watch_id": watch_id, "triggered_on": trig,
            "auxiliary_mount": aux, "flags": sorted(flags)}


def disagreement(p: Prediction) -> dict[str, list[Any]]:
    return p.disagreement(watch_queue.key, watch_queue.identity)


def test_models_that_agree_have_no_disagreement() -> None:
    a = [wq("NEW_MOUNT", 1, 2, 3), wq("NEW_MOUNT", 3, 2, 3, "IN_SUBTREE")]
    assert disagreement(Prediction(a, list(reversed(a)))) == {}
    assert disagreement(Prediction(a)) == {}                  # no as-implemented model
    assert Prediction(a).want() == 2


def test_a_record_only_one_model_predicts_is_named_with_its_side() -> None:
    only_spec = wq("NEW_MOUNT", 3, 2, 3, "IN_SUBTREE")
    p = Prediction([wq("NEW_MOUNT", 1, 2, 3), only_spec], [wq("NEW_MOUNT", 1, 2, 3)])
    d = disagreement(p)
    assert d == {"spec_only": [only_spec], "impl_only": []}
    assert p.want() == 2
    assert describe_disagreement(d) == (
        "only the spec predicts NEW_MOUNT to watch 3 on 2 aux 3 [IN_SUBTREE]")


def test_other_flags_on_the_same_record_are_both_sides() -> None:
    spec, impl = wq("UNMOUNT", 3, 2, 5, "IN_SUBTREE"), wq("UNMOUNT", 3, 2, 5)
    d = disagreement(Prediction([spec], [impl]))
    assert d == {"spec_only": [spec], "impl_only": [impl]}
    assert "only the implementation predicts UNMOUNT to watch 3 on 2 aux 5 [-]" in (
        describe_disagreement(d))
