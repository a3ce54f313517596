import os
import stat

import pytest

from probfusion.runs import atomic_write_json, atomic_write_text
from probfusion.runs.atomic import staging_dir


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
