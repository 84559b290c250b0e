"""Sweet Home 3D furniture catalogs: parsing, search, loading (axes, units, sizes, textures)."""

from __future__ import annotations

import pytest

pytest.importorskip("trimesh", reason="trimesh is not installed yet (scene generator, issue 3)")

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from soundmask.synth import assets as A

INSTALLED = A.DEFAULT_FURNITURE_DIR.is_dir() and any(A.DEFAULT_FURNITURE_DIR.glob("*.sh3f"))
needs_package = pytest.mark.skipif(
    not INSTALLED,
    reason=f"Debian package sweethome3d-furniture not installed ({A.DEFAULT_FURNITURE_DIR} missing): "
    "`apt-get install sweethome3d-furniture`",
)

# categories for which sweethome3d-furniture 1.8 has real models (violin and drum have none)
EXPECTED = [
    "piano", "guitar", "xylophone", "speaker", "radio", "tv", "phone", "clock", "fan", "washing machine",
    "microwave", "dog", "cat", "horse", "chicken", "person", "vehicle",
]  # fmt: skip


def test_parse_properties() -> None:
    text = (
        "# comment\n! other comment\nname=Caf\\u00e9 catalog\nlicense : CC-BY \\\n   3.0\n"
        "key\\ with\\ space=x=y\nname#1=Grand piano\nempty=\n"
    )
    p = A.parse_properties(text)
    assert p["name"] == "Café catalog"
    assert p["license"] == "CC-BY 3.0"
    assert p["key with space"] == "x=y"
    assert p["name#1"] == "Grand piano" and p["empty"] == ""


_OBJ = """mtllib box.mtl
v -50 0 -150
v 50 0 -150
v 50 200 -150
v -50 200 -150
v -50 0 150
v 50 0 150
v 50 200 150
v -50 200 150
vt 0 0
vt 1 0
vt 1 1
vt 0 1
usemtl red
f 1 2 3 4
f 5 8 7 6
f 1 5 6 2
usemtl tex
f 4/1 3/2 7/3 8/4
f 1/1 4/2 8/3 5/4
f 2/1 6/2 7/3 3/4
"""
_MTL = "newmtl red\nKd 1.0 0.0 0.0\nnewmtl tex\nKd 0.8 0.8 0.8\nmap_Kd stripes.png\n"


def _png() -> bytes:
    from PIL import Image

    img = np.zeros((16, 16, 3), np.uint8)
    img[:8] = (0, 255, 0)
    img[8:] = (0, 0, 255)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def _fake_catalog(directory: Path) -> Path:
    props = (
        "id=Test\nname=Test catalog\nlicense=Creative Commons Attribution 3.0 license\n\n"
        "id#1=Test#box\nname#1=Toy piano\ncategory#1=Living room\ntags#1=Music, Keyboard\ncreator#1=Ann\n"
        "model#1=/test/box/box.obj\nwidth#1=100\ndepth#1=300\nheight#1=200\n\n"
        "id#2=Test#turned\nname#2=Turned box\ncategory#2=Characters\ntags#2=Animal\ncreator#2=Bob\n"
        "model#2=/test/box/box.obj\nwidth#2=300\ndepth#2=100\nheight#2=200\nmodelRotation#2=0 0 1 0 1 0 -1 0 0\n"
        "elevation#2=50\n\n"
        "id#3=Test#missing\nname#3=Missing\nmodel#3=/test/none.obj\nwidth#3=1\ndepth#3=1\nheight#3=1\ncreator#3=X\n"
    )
    path = directory / "Test.sh3f"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("PluginFurnitureCatalog.properties", props.encode("latin-1"))
        z.writestr("test/box/box.obj", _OBJ)
        z.writestr("test/box/box.mtl", _MTL)
        z.writestr("test/box/stripes.png", _png())
    return path


def test_fake_catalog_parse_search_load(tmp_path: Path) -> None:
    _fake_catalog(tmp_path)
    entries = A.list_furniture(tmp_path)
    assert [e.name for e in entries] == [
        "Toy piano",
        "Turned box",
    ]  # the entry without a model file is skipped
    box, turned = entries
    assert box.creator == "Ann" and box.license.startswith("Creative Commons") and box.catalog == "Test catalog"
    assert box.size == (1.0, 3.0, 2.0) and box.model_path == "test/box/box.obj"
    assert turned.model_rotation == (0, 0, 1, 0, 1, 0, -1, 0, 0) and turned.elevation == 0.5
    assert "Ann" in box.attribution()
    assert A.find_furniture("keyboard", entries=entries) == [box]
    assert A.find_furniture("keyb", entries=entries) == []  # whole words only
    assert A.find_furniture(["animal", "keyboard"], exclude="music", entries=entries) == [turned]
    assert A.furniture_for("piano", entries=entries) == [box]
    with pytest.raises(KeyError):
        A.furniture_for("kazoo", entries=entries)

    # y-up centimetres → z-up metres: OBJ x 100 cm, y 200 cm (up), z 300 cm (depth)
    m = A.load_furniture(box)
    assert np.allclose(m.extents, [1.0, 3.0, 2.0], atol=1e-6)
    assert np.isclose(m.bounds[0, 2], 0.0, atol=1e-7) and np.allclose(m.bounds.sum(axis=0)[:2], 0, atol=1e-6)
    assert m.meta["creator"] == "Ann" and m.name == "Toy piano"
    # materials: the Kd-red faces are red vertices; the textured ones sample the atlas
    assert m.textured and m.texture.ndim == 3
    red = np.all(m.colors == [255, 0, 0], axis=1)
    assert red.any() and np.all(m.uv_rects[red, 2] == 0) and np.all(m.uv_rects[~red, 2] > 0)
    # the model rotation is applied in SH3D space before the axes change: x ↔ z swapped
    t = A.load_furniture(turned, size="model")
    assert np.allclose(t.extents, [3.0, 1.0, 2.0], atol=1e-6)
    assert np.allclose(A.load_furniture(turned, size="catalog").extents, turned.size, atol=1e-6)
    flat = A.load_furniture(box, textures=False)
    assert not flat.textured


def test_not_installed_means_empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nope"
    assert A.list_furniture(missing) == []
    monkeypatch.setenv("SOUNDMASK_FURNITURE_DIR", str(missing))
    assert A.list_furniture() == [] and A.find_furniture("piano") == [] and A.furniture_for("dog") == []


@needs_package
def test_installed_catalog() -> None:
    entries = A.list_furniture()
    assert len(entries) >= 800
    assert A.list_furniture() == entries  # cached
    for e in entries:
        assert e.creator and e.license and e.name and e.model_path.endswith(".obj")
        assert all(np.isfinite(e.size)) and min(e.size) >= 0 and max(e.size) > 0
    for category in EXPECTED:
        assert A.furniture_for(category), f"no model for {category}"
    assert len(A.furniture_for("person")) >= 20
    assert {e.name for e in A.furniture_for("piano")} == {
        "Grand piano",
        "Upright piano",
    }
    assert all("bench" not in e.name.lower() for e in A.furniture_for("piano"))
    assert all(e.name != "Hot dog" for e in A.furniture_for("dog"))


@needs_package
@pytest.mark.parametrize(
    ("category", "name"),
    [("dog", "Dog"), ("cat", "Siamese cat"), ("radio", "Radio"), ("fan", "Table fan")],
)
def test_installed_model_loads_to_catalog_size(category: str, name: str) -> None:
    entry = next(e for e in A.furniture_for(category) if e.name == name)
    mesh = A.load_furniture(entry)
    assert mesh.num_faces > 100 and np.all(np.isfinite(mesh.vertices))
    assert np.isclose(mesh.bounds[0, 2], 0.0, atol=1e-6)
    target = np.array(entry.size)
    # uniform "fit": inside the catalog box, touching it along one axis, same proportions (±5 %)
    assert np.all(mesh.extents <= target * (1 + 1e-5)) and np.isclose((mesh.extents / target).max(), 1.0, atol=1e-5)
    assert np.allclose(mesh.extents / mesh.extents.max(), target / target.max(), rtol=0.05, atol=0.01)
    assert mesh.meta["creator"] == entry.creator and mesh.meta["license"] == entry.license


@needs_package
def test_installed_textured_model_renders() -> None:
    pytest.importorskip("moderngl")
    from soundmask.data.types import Camera, Intrinsics
    from soundmask.synth.meshes import Instance
    from soundmask.synth.render import Lighting, Renderer

    dog = A.load_furniture(next(e for e in A.furniture_for("dog") if e.name == "Dog"))
    assert dog.textured
    ext = dog.extents
    eye = np.array([0.0, -2.5 * ext.max(), ext[2] / 2])  # in front: models face −y
    c2w = np.eye(4)
    # camera x right (+x), y down (−z), z forward (+y)
    c2w[:3, :3] = np.stack([[1, 0, 0], [0, 0, -1], [0, 1, 0]], axis=1)
    c2w[:3, 3] = eye
    with Renderer(96, 96) as r:
        out = r.render(
            [Instance(dog, 5)],
            Camera(Intrinsics(120, 120, 48, 48, 96, 96), c2w),
            Lighting(ambient=1.0, lights=()),
        )
    px = out.rgb[out.ids == 5].astype(int)
    assert len(px) > 300
    # textured fur is not the flat grey of an untextured material: colours vary and are not grey
    assert px.std(axis=0).max() > 10 and np.abs(px[:, 0] - px[:, 2]).mean() > 10
