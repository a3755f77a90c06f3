"""``rrief models import-gguf``: clear errors for a missing file, a non-GGUF file, an unknown architecture."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from extractors.cli import cli
from extractors.llm.gguf_import import GGUFImportError, import_gguf, read_gguf_header


def _gguf(path: Path, architecture: str) -> Path:
    """A small valid GGUF file: metadata and one tensor, nothing a model could be built from."""
    import numpy as np
    from gguf import GGUFWriter

    writer = GGUFWriter(str(path), architecture)
    writer.add_file_type(2)  # MOSTLY_Q4_0
    writer.add_tensor("token_embd.weight", np.zeros((4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(GGUFImportError, match="does not exist"):
        import_gguf(tmp_path / "absent.gguf", tmp_path / "out")


def test_a_file_that_is_not_gguf_is_refused_by_its_magic_bytes(tmp_path: Path) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 not a gguf")
    with pytest.raises(GGUFImportError, match="not a GGUF file"):
        import_gguf(fake, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unsupported_architecture_names_it_and_the_supported_ones(tmp_path: Path) -> None:
    source = _gguf(tmp_path / "odd.gguf", "rwkv9")
    assert read_gguf_header(source) == ("rwkv9", "Q4_0")
    result = CliRunner().invoke(
        cli, ["models", "import-gguf", str(source), "--output", str(tmp_path / "out")]
    )
    assert result.exit_code == 1
    assert "architecture 'rwkv9' cannot be loaded" in result.output
    assert "llama" in result.output  # the supported list
    assert not (tmp_path / "out").exists()


def test_output_must_be_new_or_empty(tmp_path: Path) -> None:
    source = _gguf(tmp_path / "m.gguf", "llama")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(GGUFImportError, match="not an empty directory"):
        import_gguf(source, out)
    assert (out / "keep.txt").read_text() == "x"
