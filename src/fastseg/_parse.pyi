from typing import Dict, Tuple

import numpy as np

def parse_batch(
    data: np.ndarray,
    offset: np.ndarray,
    caplen: np.ndarray,
    wirelen: np.ndarray,
    ts_ns: np.ndarray,
    linktype: np.ndarray,
    first_frame: int = ...,
) -> Tuple[Dict[str, np.ndarray], np.ndarray]: ...
