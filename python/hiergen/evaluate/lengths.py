"""Length fidelity: codes per visit and visits per patient (total variation distance)."""

from __future__ import annotations

from typing import Any

import numpy as np

from hiergen.cohort import Cohort
from hiergen.evaluate._stats import total_variation
from hiergen.evaluate._visits import view


def length_tv(real: Cohort, synthetic: Cohort, **_: Any) -> dict[str, float]:
    """Total variation between the length distributions, and the mean lengths of both."""
    rl = np.diff(view(real).codes[1])
    sl = np.diff(view(synthetic).codes[1])
    return {
        "codes_per_visit_tv": total_variation(rl, sl),
        "visits_per_patient_tv": total_variation(
            real.visits_per_patient, synthetic.visits_per_patient
        ),
        "mean_codes_per_visit": float(sl.mean()) if sl.size else float("nan"),
        "mean_codes_per_visit_real": float(rl.mean()) if rl.size else float("nan"),
        "mean_visits_per_patient": float(synthetic.visits_per_patient.mean())
        if synthetic.n_patients
        else float("nan"),
        "mean_visits_per_patient_real": float(real.visits_per_patient.mean())
        if real.n_patients
        else float("nan"),
    }
