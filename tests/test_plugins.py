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
