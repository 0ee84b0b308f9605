"""The data sets that ship with ``arch`` (``sp500``, ``nasdaq``), read without importing arch.

``import arch`` takes about a second (it loads statsmodels, scipy and matplotlib), which
``synthmarket data info`` should not pay for a CSV file. Each data set here has arch's
``load()``; should arch move its files, that falls back to arch's own loader.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

import pandas as pd


class ArchDataSet:
    """One data set of ``arch.data``: ``load()`` gives its DataFrame, dates as the index."""

    def __init__(self, name: str) -> None:
        self.name = name

    def load(self) -> pd.DataFrame:
        spec = importlib.util.find_spec("arch")
        folders = list(spec.submodule_search_locations or []) if spec else []
        files = [Path(folder) / "data" / self.name / f"{self.name}.csv.gz" for folder in folders]
        found = next((file for file in files if file.is_file()), None)
        if found is None:
            return importlib.import_module(f"arch.data.{self.name}").load()
        # as arch.data.utility.load_file reads it
        data = pd.read_csv(found)
        if "Date" in data:
            data["Date"] = pd.to_datetime(data["Date"])
            data = data.set_index("Date")
        for column in data:
            data[column] = pd.to_numeric(data[column], errors="coerce")
        return data


sp500 = ArchDataSet("sp500")
nasdaq = ArchDataSet("nasdaq")
