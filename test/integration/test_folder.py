"""The warnings of a plan on a folder with near-miss file names.

sql/folder.sql plans test/fixtures/names with the warnings kept out of its
output (they name the folder by its full path, which differs from machine
to machine); here each call's warnings are checked, path and all.
"""

DETAIL = ('Migration file names look like "YYYYMMDD_<from>_up_<to>.sql" or '
          '"YYYYMMDD_<from>_down_<to>.py", where revision names are ASCII '
          'letters, digits and underscores.')
IGNORED = ["20240106_first_UP_typo.sql", "20240107_first_up_upper.SQL",
           "20240108_first_up_.sql", "20240109_first-up_dash.sql",
           "2024010_first_up_short.sql", "20240110_first_up_café.sql"]


def test_near_misses_warn_on_every_call(cluster, database, staged):
    names = staged("test/fixtures/names")
    seen = []
    with cluster.connect(database) as conn:
        conn.add_notice_handler(lambda d: seen.append(
            (d.severity_nonlocalized, d.message_primary, d.message_detail)))
        for query, expected in [
                ("SELECT trek_plan(%s, 'head') ->> 'to'", "first"),
                ("SELECT trek_plan(%s, 'head') ->> 'to'", "first")]:
            del seen[:]
            assert conn.execute(query, (str(names),)).fetchone()[0] == expected
            assert seen == [
                ("WARNING", 'ignoring file "%s" in migration folder "%s"'
                 % (name, names), DETAIL) for name in IGNORED]
        # with client_min_messages = error, as in sql/folder.sql, none come
        conn.execute("SET client_min_messages = error")
        del seen[:]
        conn.execute("SELECT trek_plan(%s, 'head')", (str(names),))
        assert seen == []

