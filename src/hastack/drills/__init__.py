"""Drills: break the deployed lab on purpose while realistic clients run, and score what they saw.

Modules, pure first:
- samples   - Sample / Placement / Event records, the thread-safe Recorder, the immutable Recording.
- scoring   - gaps, failures, lost writes and messages, duplicates, split brain, failover times,
              min/median/max over repeats, targets, the bench comparison. Pure functions.
- scenarios - the scenarios (and the campaign's nemeses) as data, selectors, and `FaultApi`, the
              lab's side of the contract.
- profiles  - `reference`: the common-defaults tuning `hastack bench` compares against.
- report    - JSON with every raw sample, and a self-contained HTML page with an SVG timeline.
- runner    - one drill (or N) against Protocols: fault API, observe, status, workloads.
- campaign  - many drills in a seeded order over a mix of nemeses, each checked; stop at the first failure.
- workloads - VIP probe, Keystone tokens, Galera inserts, AMQP publish/consume, the watcher.
- observe   - a reference `observe` callable over the lab's public API, and its parsers.
- cli       - functions `hastack drill` / `bench` / `campaign` call; `LabFaults`, `lab_bindings`.
- demo      - a made-up run, to look at the report without a lab.
"""
