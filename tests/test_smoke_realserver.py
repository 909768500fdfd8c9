from realserver import running_server


def test_server_starts_and_pings(tmp_path, database_url):
    with running_server(tmp_path, database=database_url) as server:
        status, _, body = server.post("api/ping", {"server": {"name": "a", "key": "k"}})
        assert (status, body) == (200, {"pong": 1})
