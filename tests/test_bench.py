"""The round-robin timer: every candidate runs warmup + runs times, in a new order each round (a
fixed order lets whatever runs right after a torch eager call pay for OpenMP's
spin-waiting threads)."""

from ssdmobile.bench import measure_interleaved


def test_every_candidate_runs_and_the_order_changes():
    calls = []
    fns = {name: (lambda n=name: calls.append(n)) for name in "abcde"}
    timings = measure_interleaved(fns, runs=40, warmup=2)
    assert set(timings) == set(fns) and all(
        t.runs == 40 and t.median_ms >= 0 for t in timings.values()
    )
    assert all(calls.count(n) == 42 for n in fns)
    rounds = [tuple(calls[10 + 5 * i : 15 + 5 * i]) for i in range(40)]  # after the warm-up
    assert all(sorted(r) == list("abcde") for r in rounds)  # each round runs each once
    followers_of_a = {r[r.index("a") + 1] for r in rounds if r[-1] != "a"}
    assert len(followers_of_a) >= 3  # not always the same neighbour
    assert measure_interleaved(fns, runs=3, warmup=0).keys() == fns.keys()
