"""The [cluster] section: what is refused, TLS on links, and reloading the cluster file."""

import pytest
from cluster_setup import FAST, REPO, SECRET, cluster_table, linked_nodes
from console_client import connect, start_console

from meshnet import NodeDown, Service, command
from meshnet.cluster import ClusterConfigError, of, parse_cluster
from meshnet.cluster.discovery import StaticDiscovery


class Echo(Service):
    async def init(self):
        self.register(".echo")

    @command
    async def echo(self, value):
        return value


@pytest.mark.parametrize(
    "change, error",
    [
        ({"secret": "short"}, "at least 16"),
        ({"nodes": {"b": {"address": "127.0.0.1:1", "id": 2}}}, "is not among the cluster's nodes"),
        ({"colour": "blue"}, "unknown key 'cluster.colour'"),
        ({"heartbeat": 0}, "positive seconds"),
        ({"nodes": {"a": {"address": "nowhere", "id": 1}}}, "is not host:port"),
        (
            {
                "nodes": {
                    "a": {"address": "127.0.0.1:1", "id": 1},
                    "b": {"address": "127.0.0.1:2", "id": 1},
                }
            },
            "share id 1",
        ),
        ({"names": {"lobby": "nowhere"}}, "names node 'nowhere'"),
        ({"tls_cert": "cert.pem"}, "both 'cluster.tls_cert' and 'cluster.tls_key'"),
        ({"secret_env": "MESHNET_TEST_NO_SUCH_VARIABLE"}, "both"),
    ],
)
def test_a_wrong_cluster_section_is_refused_naming_the_problem(change, error):
    table = {**cluster_table(["a", "b"]), **change}
    with pytest.raises(ClusterConfigError, match=error):
        parse_cluster(table, REPO, "a")


async def test_links_over_tls_carry_calls_and_a_plain_node_cannot_link(certificate, autojump_clock):
    cert, key = certificate
    table = cluster_table(["a", "b", "c"], tls_cert=str(cert), tls_key=str(key))
    plain = {key: value for key, value in table.items() if not key.startswith("tls")}
    async with linked_nodes(["a", "b"], table) as secure, linked_nodes(["c"], plain) as outside:
        echo = await secure["b"].newservice(Echo)
        assert await secure["a"].call(echo, "echo", "private") == "private"
        with pytest.raises(NodeDown):
            await outside["c"].call(echo, "echo", "from outside")


def write_cluster_file(path, nodes):
    path.write_text(
        "[nodes]\n"
        + "".join(
            f'{name} = {{ address = "{entry["address"]}", id = {entry["id"]}, '
            f"absent = {str(entry.get('absent', False)).lower()} }}\n"
            for name, entry in nodes.items()
        )
    )


async def test_reloading_the_cluster_file_restarts_only_the_links_that_changed(
    tmp_path, autojump_clock
):
    nodes_table = cluster_table(["a", "b", "c"])["nodes"]
    file = tmp_path / "cluster.toml"
    write_cluster_file(file, nodes_table)
    table = {"secret": SECRET, "file": str(file), **FAST}
    async with linked_nodes(["a", "b", "c"], table, node_ids=nodes_table) as nodes:
        for name in ("b", "c"):
            await nodes[name].newservice(Echo)
        cluster = of(nodes["a"])
        assert await nodes["a"].call("b@.echo", "echo", 1) == 1
        assert await nodes["a"].call("c@.echo", "echo", 1) == 1
        [link_to_b] = [link for link in cluster.links() if link.member.name == "b"]
        nodes_table["c"]["absent"] = True
        write_cluster_file(file, nodes_table)
        assert cluster.reload() == {"c"}
        assert link_to_b in cluster.links() and link_to_b.state == "up"
        with pytest.raises(NodeDown, match="absent"):
            await nodes["a"].call("c@.echo", "echo", 1)
        assert await nodes["a"].call("b@.echo", "echo", 2) == 2


def test_a_broken_cluster_file_is_refused_at_reload_and_the_view_stays(tmp_path):
    nodes_table = cluster_table(["a", "b"])["nodes"]
    file = tmp_path / "cluster.toml"
    write_cluster_file(file, nodes_table)
    discovery = StaticDiscovery(parse_cluster({"secret": SECRET, "file": str(file)}, REPO, "a"))
    file.write_text("[nodes]\nb = { address = 'no port', id = 2 }\n")
    with pytest.raises(ClusterConfigError, match="not host:port"):
        discovery.reload()
    assert discovery.member("b") is not None


async def test_the_console_shows_the_links_and_reloads_the_cluster_file(tmp_path, autojump_clock):
    nodes_table = cluster_table(["a", "b"])["nodes"]
    file = tmp_path / "cluster.toml"
    write_cluster_file(file, nodes_table)
    table = {"secret": SECRET, "file": str(file), **FAST}
    async with linked_nodes(["a", "b"], table, node_ids=nodes_table) as nodes:
        echo = await nodes["b"].newservice(Echo)
        await of(nodes["b"]).register("echo", echo)
        await nodes["a"].call("b@echo", "echo", 1)
        session, _ = await connect(await start_console(nodes["a"]))
        [row] = [
            line for line in (await session.ok("cluster")).splitlines() if line.startswith("b ")
        ]
        assert row.split()[:4] == ["b", "2", nodes_table["b"]["address"], "up"]
        other, _ = await connect(await start_console(nodes["b"]))
        assert "echo" in await other.ok("cluster")
        assert await session.ok("reload") == "no node changed"
        nodes_table["b"]["absent"] = True
        write_cluster_file(file, nodes_table)
        assert await session.ok("reload") == "changed: b"
