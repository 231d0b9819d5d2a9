"""The therapist's report: one wearer, a date range, one printable HTML file.

``load`` reads InfluxDB, ``model`` computes days/weeks/changes and the plain
summary, ``plots`` draws the charts (inline SVG), ``render`` writes the page.
"""
