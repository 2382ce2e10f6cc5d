from pipeline.intake import apt


def test_mirror_from_deb822(tmp_path):
    d = tmp_path / "sources.list.d"
    d.mkdir()
    (d / "debian.sources").write_text(
        "Types: deb\n# comment\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\nSigned-By: /usr/share/keyrings/k.gpg\n\n"
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n"
    )
    (d / "other.sources").write_text("Types: deb\nURIs: https://nodes.example/node\nSuites: nodistro\n")
    m = apt.system_mirror((d, tmp_path / "absent.list"))
    assert m == apt.Mirror("http://mirror.example/debian", "/usr/share/keyrings/k.gpg")


def test_mirror_from_one_line_format(tmp_path):
    f = tmp_path / "sources.list"
    f.write_text("# x\ndeb [arch=amd64 signed-by=/k.gpg] http://m.example/debian bookworm main\n")
    assert apt.system_mirror((f,)) == apt.Mirror("http://m.example/debian", "/k.gpg")


def test_private_config_stays_private(tmp_path):
    private = apt.PrivateApt(root=tmp_path / "apt", mirror=apt.Mirror("http://m/debian", "/k.gpg"),
                             suite="sid", arch="arm64")
    opts = private.options()
    joined = " ".join(opts)
    assert f"Dir::Etc::SourceList={tmp_path}/apt/sources.list" in joined
    assert "Dir::Etc::SourceParts=/dev/null" in joined
    assert "Dir::State::status=/dev/null" in joined
    assert "APT::Architecture=arm64" in joined
    private._prepare()
    assert (tmp_path / "apt" / "sources.list").read_text() == "deb [signed-by=/k.gpg] http://m/debian sid main\n"
