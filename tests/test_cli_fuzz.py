"""Random malformed CSV files through ``handgrad train``: a clean error or a run, never a crash."""

from __future__ import annotations

import string

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from handgrad.cli import main

cells = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**40), 10**40).map(str),
    st.sampled_from(["", "NA", "nan", "inf", "-inf", "1e400", "abc", '"1,5"', " 3 ", "1e-300"]),
    st.text(string.printable, max_size=6),
)
headers = st.lists(st.sampled_from(["a", "b", "y", "", "y", "a b", "é"]), min_size=1, max_size=5)


@st.composite
def nearly_valid(draw):
    """A numeric table with header a,b,y whose cells may each be swapped for a bad one."""
    numbers = st.floats(-1e3, 1e3, allow_nan=False).map(lambda x: f"{x:.6g}")
    n_rows = draw(st.integers(0, 12))
    rows = [[draw(numbers) for _ in range(3)] for _ in range(n_rows)]
    for _ in range(draw(st.integers(0, 2))):
        if rows:
            row = draw(st.integers(0, n_rows - 1))
            rows[row][draw(st.integers(0, 2))] = draw(cells)
    return "\n".join(["a,b,y"] + [",".join(row) for row in rows])


@st.composite
def wild(draw):
    header = draw(headers)
    separator = draw(st.sampled_from([",", ";", "\t", ",,"]))
    rows = draw(
        st.lists(st.lists(cells, min_size=0, max_size=len(header) + 1), min_size=0, max_size=8)
    )
    lines = [separator.join(header)] + [separator.join(row) for row in rows]
    if draw(st.booleans()):
        lines.append(draw(st.text(max_size=20)))  # a stray tail
    return "\n".join(lines)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=st.one_of(nearly_valid(), wild()))
def test_malformed_csv_ends_in_a_clean_error_or_a_run(tmp_path_factory, capsys, text):
    folder = tmp_path_factory.mktemp("fuzz")
    data = folder / "data.csv"
    data.write_text(text, encoding="utf-8", errors="surrogatepass")
    args = ["train", "--data", str(data), "--target", "y", "--epochs", "3"]
    code = main([*args, "--out", str(folder / "run"), "--quiet"])  # raises on a crash
    err = capsys.readouterr().err
    event(f"exit code {code}")
    assert code in (0, 1, 2)
    if code == 0:
        assert (folder / "run" / "model" / "model.json").is_file()
    else:
        assert err.startswith("handgrad train: error: ") and "Traceback" not in err
        if code == 2:
            assert not (folder / "run").exists()  # bad input leaves no half-made run
