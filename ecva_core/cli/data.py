"""``ecva data validate|download|demo``: the dataset commands."""

from __future__ import annotations

import click

from ecva_core.cli.data_demo import demo
from ecva_core.cli.data_download import download
from ecva_core.cli.data_validate import validate


@click.group()
def data() -> None:
    """Validate, download or generate the ECVA dataset."""


data.add_command(validate)
data.add_command(download)
data.add_command(demo)
