import numpy as np

def assemble(out: np.ndarray, pre: np.ndarray, pre_len: int, head: np.ndarray,
             head_cap: np.ndarray, pattern: np.ndarray, pay_off: np.ndarray,
             pay_cap: np.ndarray, pcapng: bool) -> int: ...
