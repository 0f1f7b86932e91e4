"""meshnet's build backend: setuptools, refusing a wheel or sdist without the page's assets.

The demo's browser page loads cbor-x's browser bundle from ``demo_game/web/node_modules``,
where ``make web`` installs it from the npm registry. setuptools leaves out a missing
package-data file without a word, and the page of such a wheel cannot talk to the hub; so
building a wheel or an sdist without it fails with what to run. Editable installs (``make
install``) do not need it: they serve the page from the clone, once ``make web`` has run.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import build_meta
from setuptools.build_meta import *  # noqa: F403  (every hook this one does not wrap)

WEB_ASSETS = ("demo_game/web/node_modules/cbor-x/dist/index.js",)
"""Files the page needs that are not in the repository (relative to the project root)."""


class MissingWebAssets(RuntimeError):
    """A wheel or sdist would be built without the page's npm-built files."""


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    """setuptools' ``build_wheel``, once the page's assets are there."""
    _require_web_assets()
    return build_meta.build_wheel(wheel_directory, config_settings, metadata_directory)


def build_sdist(sdist_directory, config_settings=None):
    """setuptools' ``build_sdist``, once the page's assets are there."""
    _require_web_assets()
    return build_meta.build_sdist(sdist_directory, config_settings)


def _require_web_assets() -> None:
    missing = [path for path in WEB_ASSETS if not Path(path).is_file()]
    if missing:
        raise MissingWebAssets(
            f"{', '.join(missing)} missing: run `make web` (npm ci --prefix demo_game/web) "
            "before building, so the demo's page works from the wheel"
        )
