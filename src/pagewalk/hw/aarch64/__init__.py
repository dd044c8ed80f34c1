"""The Arm architecture only (no Linux): VMSAv8-64 stage-1 translation for TTBR1.

Descriptor bits and the output-address codec (bits), granule/VA geometry,
typed descriptors, MAIR, the MMU's walk (translate), iteration over tables
and mappings, and a table builder. Spec: shared/spec/aarch64-vmsa.md.
"""

from .bits import Bit, OutputAddress
from .builder import TableBuilder
from .descriptor import Descriptor, Kind, leaf_descriptor, table_descriptor
from .geometry import Geometry
from .tables import Mapping, TablePage, mappings, table_pages
from .translate import Translation, WalkStep, make_virt_to_phys, translate, translate_batch

__all__ = ["Bit", "OutputAddress", "TableBuilder", "Descriptor", "Kind", "leaf_descriptor", "table_descriptor",
           "Geometry", "Mapping", "TablePage", "mappings", "table_pages", "Translation", "WalkStep",
           "make_virt_to_phys", "translate", "translate_batch"]
