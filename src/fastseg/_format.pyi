from typing import Any, Callable, List, Optional, Tuple, Union

import numpy as np
import numpy.typing as npt

def format_rows(
    columns: List[Tuple[str, Union[npt.NDArray[Any], bytes], int, Optional[npt.NDArray[np.bool_]]]],
    sep: bytes = ...,
    unset: bytes = ...,
    end: bytes = ...,
    write: Optional[Callable[[memoryview], object]] = ...,
    chunk_rows: int = ...,
) -> Union[bytes, int]: ...

def address_bytes(addrs: npt.ArrayLike, ip_version: npt.ArrayLike) -> npt.NDArray[np.bytes_]: ...
def address_text(addrs: npt.ArrayLike, ip_version: npt.ArrayLike) -> npt.NDArray[np.object_]: ...
def float_repr(values: npt.ArrayLike) -> npt.NDArray[np.bytes_]: ...
