"""``hiergen stats`` end to end through the ``hiergen`` group: every format's fixture with
``--json``, typed loader options, and one-line errors without tracebacks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from hiergen.cli.main import cli
from hiergen.loaders import load_table
from hiergen.loaders.options import parse_loader_options

FIX = Path(__file__).parent / "fixtures"


pytestmark = pytest.mark.usefixtures("builtin_plugins_only")


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["stats", *args])


def one_line_error(res: Result, code: int = 1) -> str:
    """The ``Error:`` line of a failed run; checks the exit code and that no traceback shows."""
    assert res.exit_code == code, res.output
    assert "Traceback" not in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    errors = [line for line in res.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, res.output
    return errors[0]


# (path, format, rows read, rows kept, visits) of each fixture
FIXTURES = [
    ("nhds/sample.txt", "nhds", 12, 9, 4),
    ("mimic3", "mimic3", None, None, 4),
    ("mimic4", "mimic4", None, None, 3),
    ("meds", "meds", None, None, 3),
    ("table/long.csv", "table", 8, 4, 3),
    ("synpuf", "synpuf", None, None, 3),
]


@pytest.mark.parametrize(("path", "fmt", "read", "kept", "visits"), FIXTURES)
def test_stats_json_on_every_format(
    path: str, fmt: str, read: int | None, kept: int | None, visits: int
) -> None:
    res = run(str(FIX / path), "--format", fmt, "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    load = out["load"]
    assert load["format"] == fmt and load["visits"] == visits
    if read is not None:
        assert (load["rows_read"], load["rows_kept"]) == (read, kept)
    for level in ("code", "category"):
        s = out["sparsity"][level]
        n = s["items"]
        assert s["possible_pairs"] == n * (n - 1) // 2
        assert 0 <= s["observed_pairs"] <= s["possible_pairs"]
    assert out["sparsity"]["code"]["items"] >= out["sparsity"]["category"]["items"] > 0


def test_stats_text_output_prints_report_and_table() -> None:
    res = run(str(FIX / "table" / "long.csv"), "--format", "table")
    assert res.exit_code == 0, res.output
    assert "distinct items" in res.stdout and "dropped" not in res.stdout
    assert "unknown sex value" in res.stderr  # the load report goes to stderr


def test_missing_file_is_a_usage_error() -> None:
    line = one_line_error(run("no/such/file.csv", "--format", "table"), code=2)
    assert "does not exist" in line


def test_missing_column_names_file_and_column(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("patient_id,visit_id,code,age\n1,1,4019,3\n")
    line = one_line_error(run(str(p), "--format", "table"))
    assert "t.csv lacks column(s) sex" in line


def test_wrong_delimiter_is_named(tmp_path: Path) -> None:
    line = one_line_error(run(str(FIX / "table" / "long.csv"), "--format", "table",
                              "-o", "delimiter=;"))
    assert "lacks column(s)" in line and "','-delimited" in line
    d = tmp_path / "m"
    shutil.copytree(FIX / "mimic3", d)
    (d / "PATIENTS.csv").write_text((d / "PATIENTS.csv").read_text().replace(",", ";"))
    line = one_line_error(run(str(d), "--format", "mimic3"))
    assert "PATIENTS.csv" in line and "';'-delimited" in line


def test_strict_mode_error_is_one_line() -> None:
    line = one_line_error(run(str(FIX / "mimic3"), "--format", "mimic3", "--strict"))
    assert "strict mode" in line and "DIAGNOSES_ICD.csv line" in line


def test_unknown_format_and_option_are_usage_errors() -> None:
    line = one_line_error(run(str(FIX / "mimic3"), "--format", "mimic5"), code=2)
    assert "mimic5" in line and "mimic3" in line
    line = one_line_error(run(str(FIX / "mimic3"), "--format", "mimic3", "-o", "colour=red"),
                          code=2)
    assert "no option 'colour'" in line and "seq_order" in line
    line = one_line_error(run(str(FIX / "mimic3"), "--format", "mimic3", "-o", "seq_order=maybe"),
                          code=2)
    assert "seq_order='maybe'" in line and "true or false" in line


# --- typed options ------------------------------------------------------------------------
_HW = "patient_id,visit_id,code,age,sex\na,1,4019,50,H\na,1,486,50,H\nb,1,25000,30,W\n"


@pytest.mark.parametrize("value", ["H:0,W:1", '{"H": 0, "W": 1}', " h:0 , w:1 "])
def test_sex_values_from_the_command_line(tmp_path: Path, value: str) -> None:
    p = tmp_path / "hw.csv"
    p.write_text(_HW)
    res = run(str(p), "--format", "table", "--json", "-o", f"sex_values={value}")
    assert res.exit_code == 0, res.output
    load = json.loads(res.stdout)["load"]
    assert load["dropped"] == {} and load["rows_kept"] == 3
    # without the mapping, H/W are not sex values at all
    line = one_line_error(run(str(p), "--format", "table"))
    assert "column 'sex'" in line and "sex='H'" in line


def test_sex_values_mapping_is_applied(tmp_path: Path) -> None:
    p = tmp_path / "hw.csv"
    p.write_text(_HW)
    opts = parse_loader_options(load_table, ["sex_values=H:0,W:1"], loader="table")
    assert opts == {"sex_values": {"H": 0, "W": 1}}
    c, _ = load_table(p, **opts)
    assert c.sex.tolist() == [0, 1]


def test_bad_sex_values_are_errors(tmp_path: Path) -> None:
    p = tmp_path / "hw.csv"
    p.write_text(_HW)
    line = one_line_error(run(str(p), "--format", "table", "-o", "sex_values=H:0,W:2"))
    assert "sex_values" in line and "'W': 2" in line
    line = one_line_error(run(str(p), "--format", "table", "-o", "sex_values=H0"), code=2)
    assert "KEY:VALUE" in line
    line = one_line_error(run(str(p), "--format", "table", "-o", "sex_values={bad json"), code=2)
    assert "invalid JSON" in line


def test_option_types_follow_the_signature() -> None:
    from hiergen.loaders import load_meds, load_synpuf

    assert parse_loader_options(load_table, ["visit=none", "time=when", "delimiter=;"]) == {
        "visit": None, "time": "when", "delimiter": ";"}
    assert parse_loader_options(load_synpuf, ["admitting=yes", "claims=inpatient,outpatient"]) == {
        "admitting": True, "claims": ["inpatient", "outpatient"]}
    assert parse_loader_options(load_synpuf, ["claims=inpatient"]) == {"claims": "inpatient"}
    assert parse_loader_options(load_meds, ["sex_codes=SEX//F:1"]) == {"sex_codes": {"SEX//F": 1}}
    with pytest.raises(ValueError, match="expected KEY=VALUE"):
        parse_loader_options(load_table, ["visit"])


def test_time_visits_from_the_command_line(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("pid,when,dx,years,gender\na,2020-01-02,4019,50,F\na,2020-01-02,25000,50,F\n"
                 "a,2019-05-01,486,49,F\n")
    res = run(str(p), "--format", "table", "--json", "-o", "patient=pid", "-o", "visit=none",
              "-o", "time=when", "-o", "code=dx", "-o", "age=years", "-o", "sex=gender")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["load"]["visits"] == 2


def test_stats_json_reproduces_the_nhds_figures(nhds_path: Path) -> None:
    res = run(str(nhds_path), "--format", "nhds", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    code, cat = out["sparsity"]["code"], out["sparsity"]["category"]
    assert (code["items"], cat["items"]) == (8083, 1116)
    assert (code["observed_pairs"], code["possible_pairs"]) == (767_787, 32_663_403)
    assert round(100 * code["coverage"], 2) == 2.35 and round(100 * cat["coverage"], 1) == 21.6
    assert out["load"]["rows_read"] == 1_105_849 and out["load"]["visits"] == 151_551
