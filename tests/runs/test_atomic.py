import os
import stat

import pytest

from probfusion.errors import RunExistsError
from probfusion.runs import atomic_write_json, atomic_write_text
from probfusion.runs.atomic import staged_dir, staging_dir


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_written_files_and_staging_folders_get_ordinary_permissions(tmp_path, umask_022):
    atomic_write_text(tmp_path / "a.txt", "x")
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644  # not tempfile's 0600
    assert stat.S_IMODE(staging_dir(tmp_path / "evaluation").stat().st_mode) == 0o755


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path):
    atomic_write_json(tmp_path / "m.json", {"a": 1})
    with pytest.raises(TypeError, match="not JSON serializable"):
        atomic_write_json(tmp_path / "m.json", {"a": object()})
    assert (tmp_path / "m.json").read_text().strip().replace(" ", "").replace("\n", "") == '{"a":1}'
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_staged_dir_puts_the_folder_in_place_whole_and_replaces_only_when_asked(tmp_path):
    target = tmp_path / "report"
    with staged_dir(target) as staging:
        assert not target.exists()  # filled out of sight
        (staging / "a.txt").write_text("first")
    assert (target / "a.txt").read_text() == "first"
    with (
        pytest.raises(RunExistsError, match="already holds it"),
        staged_dir(target, exists_message="already holds it") as staging,
    ):
        (staging / "a.txt").write_text("second")
    assert (target / "a.txt").read_text() == "first"
    with staged_dir(target, overwrite=True) as staging:
        (staging / "b.txt").write_text("second")
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]  # replaced, not merged
    assert [p.name for p in tmp_path.iterdir()] == ["report"]  # no staging or trash folder left


def test_staged_dir_removes_its_staging_folder_on_failure(tmp_path):
    target = tmp_path / "report"
    target.mkdir()
    (target / "old.txt").write_text("kept")

    def fill_then_fail():
        with staged_dir(target, overwrite=True) as staging:
            (staging / "new.txt").write_text("half")
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        fill_then_fail()
    assert [p.name for p in target.iterdir()] == ["old.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["report"]
