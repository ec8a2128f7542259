import os

import pytest

from vaekit.config import ConfigError
from vaekit.plugins import import_object


def test_a_class_defined_in_a_script_or_notebook_is_named_as_such():
    with pytest.raises(ConfigError, match=r"model\.arch: '__main__:Net' was defined in a script or notebook"):
        import_object("__main__:Net", "model.arch", trust_code=True)


def test_nothing_is_imported_without_trust():
    from vaekit.plugins import UntrustedCode

    with pytest.raises(UntrustedCode, match=r"model\.arch"):
        import_object("tests.networks:TinyPluginVAE", "model.arch", trust_code=False)


def test_an_installed_packages_entry_point_brings_its_components_into_every_vaekit_process(tmp_path):
    """A package declaring ``[project.entry-points."vaekit.components"]`` (here its installed
    metadata, written by hand) is found by importlib.metadata; its module registers on discovery."""
    import subprocess
    import sys

    (tmp_path / "my_vae_components.py").write_text(
        "from vaekit.data.recipes import CROPS\n"
        "CROPS.add('top-half', lambda w, h: (0, 0, w, h // 2), summary='the upper half (an installed plug-in)')\n"
    )
    dist = tmp_path / "my_vae_components-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-vae-components\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[vaekit.components]\nmine = my_vae_components\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-m", "vaekit", "components", "crop"], env=env, capture_output=True, text=True, check=True
    )
    assert "top-half" in done.stdout and "an installed plug-in" in done.stdout


def test_a_plugin_module_that_cannot_be_imported_is_one_line_and_exit_2(capsys):
    from vaekit.cli import main

    assert main(["--plugin", "no_such_package.components", "components"]) == 2
    assert capsys.readouterr().err.strip() == (
        "vaekit: error: --plugin: cannot import the plug-in module 'no_such_package.components' "
        "(No module named 'no_such_package')"
    )


def test_allowing_code_once_for_the_process_lets_every_later_import_through(monkeypatch):
    from vaekit import plugins

    monkeypatch.setattr(plugins, "_ALLOWED", False)
    with pytest.raises(plugins.UntrustedCode):
        plugins.import_object("tests.networks:tiny_features", "likelihood.perceptual.network")
    plugins.allow_code()
    assert callable(plugins.import_object("tests.networks:tiny_features", "likelihood.perceptual.network"))
