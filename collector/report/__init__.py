"""The annual compliance report: InfluxDB (through collector.queries) -> figures -> HTML/CSV/JSON.

``probe-collector report --from 2025-01-01 --to 2026-01-01 --format html --lang vi --out r.html``

| module | job |
|---|---|
| ``settings.py`` | the report's own TOML (peak hours, which targets are the data network …) |
| ``fetch.py`` | the only module that talks to InfluxDB: runs catalogue queries, progress |
| ``gather.py`` | which catalogue queries, with which grouping, into typed rows |
| ``model.py`` | typed figures per commune / district / province, and the verdicts |
| ``verdicts.py`` | met / not met / not measured against the plan's targets |
| ``i18n.py`` | Vietnamese and English strings |
| ``svg.py``, ``html.py`` | inline SVG charts, the standalone HTML document |
| ``areas.py``, ``svgmap.py`` | the area registry (GeoJSON boundaries) and the commune map |
| ``radio.py``, ``sections.py`` | mobile by technology and operator; the map and radio sections |
| ``style.py`` | the stylesheet: screen, and print on A4 landscape |
| ``tables.py`` | CSV and JSON writers |
| ``run.py`` | the CLI's entry: config -> fetch -> model -> file |
"""
