"""Exporters: genperf's data in other formats, one module each, one ``render()`` each.

* :mod:`genperf.exporters.json`: the spec's JSON export document, streamed.
* :mod:`genperf.exporters.csv`: one row per task with every metric column, streamed.
* :mod:`genperf.exporters.prometheus`: the Prometheus text exposition of a registry, and the
  collector that reads the monitor at scrape time.

Task exports are generators over an iterable of records: given ``store.iter_tasks(...)`` they
hold one batch at a time, so a million tasks export in bounded memory.
"""
