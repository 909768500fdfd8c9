"""The one Jinja2 environment of the pages, and the version stamp of their static files.

Autoescape is on and undefined names fail, so a template can neither inject markup nor silently
show an empty value. Static URLs carry a hash of the files' content, so browsers may cache them
for a year and still get the new ones after an upgrade.
"""
from __future__ import annotations

import hashlib
from importlib import resources

import jinja2

from overc.ui import schedule_views, views

STATIC_DIR = str(resources.files("overc.ui") / "static")


def make_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("overc.ui", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.globals["ago"] = views.ago
    env.globals["deliveries"] = views.deliveries
    env.filters.update(
        utc=views.utc_text, iso=views.iso, duration=views.duration_text,
        icon=lambda s: views.ICON.get(s, "?"),
        lower_state=lambda s: (s or "none").lower(),
        run_time=schedule_views.run_time_text,
    )
    return env


def static_version() -> str:
    digest = hashlib.sha256()
    folder = resources.files("overc.ui") / "static"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.is_file():
            digest.update(entry.read_bytes())
    return digest.hexdigest()[:10]
