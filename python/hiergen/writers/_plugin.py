"""Registers the built-in output writers through the ``hiergen_writers`` hook."""

from __future__ import annotations

from hiergen.plugins.markers import hookimpl
from hiergen.plugins.records import WriterSpec
from hiergen.writers.flat import csv_writer, parquet_writer
from hiergen.writers.meds import MedsWriter


@hookimpl
def hiergen_writers() -> list[WriterSpec]:
    return [
        WriterSpec(
            "meds", MedsWriter,
            "MEDS: data/*.parquet (subject_id, time, code) + metadata/", ".parquet",
        ),
        WriterSpec(
            "parquet", parquet_writer,
            "flat long table (patient_id, visit_index, age, sex, category, code)", ".parquet",
        ),
        WriterSpec("csv", csv_writer, "flat long table as CSV files", ".csv"),
    ]
