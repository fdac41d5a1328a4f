"""Import the official Korean DUR ingredient lists a user downloaded and turn them into KG edges.

    kmed kg import-dur ~/Downloads/dur            # → data/processed/kg_edges/dur.jsonl
    kmed kg import-dur ~/Downloads/dur --json     # the report as JSON

    from kmed.data.dur import import_dur
    report = import_dur(Path("~/Downloads/dur"), kb=kb)

Users download the DUR (의약품 안전사용서비스) files themselves from 공공데이터포털 / 한국의약품안전관리원:
병용금기, 임부금기, 특정연령대금기, 노인주의, 수유부주의, 용량주의(1일 최대용량), 투여기간주의, 효능군중복.
Each file's table is recognised from its column names (the official Korean headers, the OpenAPI field
names, or a snake_case repackaging such as ``igrd_nm``/``condi_rsn``), with the file name as a hint for
the tables whose columns look alike (노인주의, 수유부주의). CSV may be UTF-8 (with or without BOM) or
CP949; XLSX is read when openpyxl is installed.

Modules: ``vocab`` (table keys, column names, recognising a table), ``readers`` (CSV/XLSX with one
header sniffer), ``matcher`` (ingredient names onto KB drugs), ``handlers`` (one handler per table:
rows → edges), ``report`` and ``importer`` (the folder → an edge file and a report).
"""

from kmed.data.dur.handlers import map_table
from kmed.data.dur.importer import default_output, import_dur, write_edges
from kmed.data.dur.matcher import DrugMatcher, name_keys
from kmed.data.dur.readers import RawTable, read_table
from kmed.data.dur.report import ImportReport, TableReport
from kmed.data.dur.vocab import TABLES, detect_table

__all__ = [
    "TABLES",
    "DrugMatcher",
    "ImportReport",
    "RawTable",
    "TableReport",
    "default_output",
    "detect_table",
    "import_dur",
    "map_table",
    "name_keys",
    "read_table",
    "write_edges",
]
