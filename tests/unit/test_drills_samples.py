"""The recorder: one clock, safe from many threads, a snapshot that survives JSON."""

from __future__ import annotations

import json
import threading

from hastack.drills.samples import Placement, Recorder, Recording, Sample, short_error


class FakeClock:
    def __init__(self, start: float = 100.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t


def test_times_are_seconds_since_the_recorder_started() -> None:
    clock = FakeClock()
    rec = Recorder(clock, wall=lambda: 1234.5)
    clock.t = 102.5
    began = rec.now()
    clock.t = 103.0
    s = rec.op("db", began, True, id="x", node="ctl-1")
    assert (s.t, s.latency, s.id, s.node) == (3.0, 0.5, "x", "ctl-1")
    assert rec.snapshot().started_wall == 1234.5


def test_many_threads_lose_nothing_and_the_snapshot_is_in_time_order() -> None:
    rec = Recorder()

    def work(k: int) -> None:
        for i in range(2000):
            rec.op("vip", rec.now(), True, id=f"{k}-{i}")
            if i % 100 == 0:
                rec.place(Placement(rec.now(), ("ctl-1",)))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    snap = rec.snapshot()
    assert len(snap.samples) == 16000
    assert len({s.id for s in snap.samples}) == 16000
    assert len(snap.placements) == 160
    assert [s.t for s in snap.samples] == sorted(s.t for s in snap.samples)
    assert rec.count("vip") == 16000


def test_a_recording_survives_json() -> None:
    rec = Recorder()
    rec.event("start", "go", node="ctl-1")
    rec.op("publish", rec.now(), False, id="m1", error="NackError: nacked", flag="skipped")
    rec.place(Placement(rec.now(), ("ctl-1", "ctl-2"), ("net-1",), None))
    rec.place(Placement(rec.now(), error="timeout"))
    rec.check("db_present", {"ctl-1": ["a"], "ctl-2": None})
    snap = rec.snapshot()
    back = Recording.from_json(json.loads(json.dumps(snap.to_json())))
    assert back == snap


def test_recording_helpers() -> None:
    rec = Recording(0.0, (Sample("db", 1, True), Sample("vip", 2, True)), (Placement(5),), ())
    assert [s.stream for s in rec.stream("db")] == ["db"]
    assert rec.end() == 5
    assert rec.first_event("fault") is None


def test_errors_are_one_short_line() -> None:
    text = short_error(ValueError("line one\nline two" + "x" * 500))
    assert text.startswith("ValueError: line one line two")
    assert "\n" not in text
    assert len(text) == 200
