"""Each bundle's docs/input_checks.md names the tests that cover its rows: every one of them exists."""

import pathlib
import re

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
BUNDLES = sorted(p.parent.parent.name for p in REPO.glob("bundles/*/configs/metadata.json"))


@pytest.mark.parametrize("bundle", BUNDLES)
def test_every_test_named_in_the_input_checks_table_exists(bundle):
    page = REPO / "bundles" / bundle / "docs" / "input_checks.md"
    assert page.is_file(), f"{page} is missing: expected one bad-input table per bundle"
    named = re.findall(r"`(?:tests/)?(test_\w+\.py)::(test_\w+)", page.read_text())
    assert len(named) >= 5, f"{page} names {len(named)} tests; expected its probes table"
    missing = [
        f"{module}::{name}"
        for module, name in named
        if not (REPO / "tests" / module).is_file()
        or not re.search(rf"^def {name}\(", (REPO / "tests" / module).read_text(), re.MULTILINE)
    ]
    assert not missing, f"{page} names tests that do not exist: {missing}"
    assert "installed by `import monai_hyperconv`" not in page.read_text()  # issue 25: initialize installs it
