import pytest
import torch

from starnet import FUSION_OPS, Fusion, get_op, make_act, register_op


def test_star_multiplies_and_sum_adds():
    a, b = torch.tensor([2.0, -1.0]), torch.tensor([3.0, 4.0])
    assert torch.equal(get_op("star")(a, b), torch.tensor([6.0, -4.0]))
    assert torch.equal(get_op("sum")(a, b), torch.tensor([5.0, 3.0]))


def test_unknown_op_lists_valid_names():
    with pytest.raises(ValueError, match="unknown op 'mul'; valid ops: concat, gate, max, star, sum; presets"):
        get_op("mul")


def test_registering_an_op_makes_it_usable_by_name():
    @register_op("max_test")
    def max_fusion(a, b):
        return torch.maximum(a, b)
    try:
        assert Fusion("max_test")(torch.tensor([1.0]), torch.tensor([2.0])).item() == 2.0
        with pytest.raises(ValueError, match="already registered"):
            register_op("max_test")(max_fusion)
    finally:
        FUSION_OPS.pop("max_test")


def test_kernel_codes_come_from_the_registry():
    from starnet.kernels import codes
    from starnet.ops import act_kernel_code, op_kernel_code
    OP_STAR, OP_SUM = codes.OPS["star"], codes.OPS["sum"]
    assert (op_kernel_code("star"), op_kernel_code("sum")) == (OP_STAR, OP_SUM)
    assert Fusion("sum").kernel_code == OP_SUM
    assert act_kernel_code("gelu") is None and act_kernel_code("relu6") is not None

    @register_op("max_test")
    def max_fusion(a, b):
        return torch.maximum(a, b)
    try:
        assert op_kernel_code("max_test") is None  # no code: the kernels leave it to PyTorch
    finally:
        FUSION_OPS.pop("max_test")
    register_op("coded_test", kernel_code=OP_SUM)(lambda a, b: a + b)
    try:
        assert op_kernel_code("coded_test") == OP_SUM
    finally:
        FUSION_OPS.pop("coded_test")
    assert op_kernel_code("coded_test") is None  # gone with the op
    with pytest.raises(TypeError, match="kernel_code"):
        register_op("bad_test", kernel_code="sum")


def test_block_kernel_codes_of_the_zoo():
    """max and gate have a code in DemoNet's block kernel (its zoo build) only, silu an activation code there only; an
    op registered again under one of their names has none (the kernel would compute the built-in op)."""
    from starnet.kernels import codes
    from starnet.kernels.demo_block import uses_zoo
    OP_STAR, OP_MAX, OP_GATE = codes.BLOCK_OPS["star"], codes.BLOCK_OPS["max"], codes.BLOCK_OPS["gate"]
    from starnet.ops import act_kernel_code, block_act_kernel_code, block_op_kernel_code, op_kernel_code
    assert (block_op_kernel_code("max"), block_op_kernel_code("gate")) == (OP_MAX, OP_GATE)
    assert op_kernel_code("max") is None and op_kernel_code("gate") is None  # StarNet's fused MLP has neither
    assert block_op_kernel_code("star") == OP_STAR and block_op_kernel_code("concat") is None
    assert Fusion("gate").block_kernel_code == OP_GATE and Fusion("gate").kernel_code is None
    assert block_act_kernel_code("silu") is not None and act_kernel_code("silu") is None
    assert uses_zoo(block_act_kernel_code("gelu"), OP_MAX) and uses_zoo(block_act_kernel_code("silu"), OP_STAR)
    assert not uses_zoo(block_act_kernel_code("gelu"), OP_STAR)
    builtin = FUSION_OPS.pop("max")
    try:
        register_op("max")(lambda a, b: torch.minimum(a, b))  # a user's own "max"
        assert block_op_kernel_code("max") is None
    finally:
        FUSION_OPS.pop("max")
        register_op("max", block_kernel_code=OP_MAX)(builtin)
    assert block_op_kernel_code("max") == OP_MAX
    with pytest.raises(TypeError, match="block_kernel_code"):
        register_op("bad_test", block_kernel_code=1.0)
    with pytest.raises(ValueError, match="element-wise"):
        register_op("bad_test", block_kernel_code=OP_MAX, out_mult=2)


def test_activation_registry():
    assert isinstance(make_act("none"), torch.nn.Identity)
    assert make_act("relu6")(torch.tensor([7.0])).item() == 6.0
    with pytest.raises(ValueError, match="unknown activation"):
        make_act("swishy")


@pytest.mark.parametrize("op", ["star", "sum", "max", "gate", "concat"])
def test_compiled_branches_match_eager(op):
    """trainer.compile_branches=true: op(act(a), b) as one compiled kernel, same values and gradients (concat on
    StarNet's channel dim, 1)."""
    from starnet.ops import act_then_op
    a = torch.randn(2, 8, 5, 5, requires_grad=True)
    b = torch.randn(2, 8, 5, 5, requires_grad=True)
    act, fusion = make_act("relu6"), Fusion(op, channel_dim=1)
    a.data[0, 0] = 7.0  # ReLU6's clipped region must get zero gradient on both paths
    results = []
    for compiled in (False, True):
        out = act_then_op("relu6", act, fusion, a, b, compiled=compiled)
        out.backward(torch.ones_like(out))
        results.append((out.detach(), a.grad.clone(), b.grad.clone()))
        a.grad = b.grad = None
    for eager, compiled in zip(*results):
        torch.testing.assert_close(compiled, eager)


# -- the zoo of ops beyond star and sum --------------------------------------------------------------------------------
def test_zoo_ops_compute_their_formulas():
    a, b = torch.tensor([[2.0, -1.0]]), torch.tensor([[3.0, -4.0]])
    assert torch.equal(get_op("max")(a, b), torch.tensor([[3.0, -1.0]]))
    torch.testing.assert_close(get_op("gate")(a, b), a * torch.sigmoid(b))
    assert torch.equal(Fusion("concat")(a, b), torch.tensor([[2.0, -1.0, 3.0, -4.0]]))  # channels last
    x, y = torch.zeros(1, 2, 3, 3), torch.ones(1, 5, 3, 3)
    assert Fusion("concat", channel_dim=1)(x, y).shape == (1, 7, 3, 3)  # NCHW, branches of unequal width


@pytest.mark.parametrize("op", ["star", "sum", "max", "gate", "concat"])
@pytest.mark.parametrize("channel_dim", [1, -1])
def test_every_op_scripts(op, channel_dim):
    """TorchScript compiles only the call an op takes: an element-wise op's function has no ``dim``."""
    fusion = Fusion(op, channel_dim=channel_dim)
    a, b = torch.randn(2, 4, 3, 3), torch.randn(2, 4, 3, 3)
    assert torch.equal(torch.jit.script(fusion)(a, b), fusion(a, b))


def test_a_fusion_pickled_before_its_concat_dim_concatenates_where_it_did():
    import pickle
    x, y = torch.zeros(1, 2, 3, 3), torch.ones(1, 5, 3, 3)
    wide = Fusion("concat", channel_dim=1)
    del wide.__dict__["_cat_dim"]
    assert pickle.loads(pickle.dumps(wide))(x, y).shape == (1, 7, 3, 3)
    old = Fusion("star")  # from before channel_dim and the out_mult: the class defaults
    for key in ("_cat_dim", "channel_dim", "_out_mult"):
        del old.__dict__[key]
    assert torch.equal(pickle.loads(pickle.dumps(old))(x[:, :1], y[:, :1]), x[:, :1])


def test_presets_name_an_op_and_its_activation():
    from starnet.ops import OP_PRESETS, branch_merge, check_op
    assert branch_merge("bilinear", "gelu") == ("star", "none")
    assert branch_merge("swiglu", "gelu") == ("star", "silu")
    assert branch_merge("glu", "relu6") == ("gate", "none")
    assert branch_merge("max", "gelu") == ("max", "gelu")  # an op keeps the model's activation
    for name, (op, act) in OP_PRESETS.items():
        assert op in FUSION_OPS and make_act(act) is not None and check_op(name) == name
    assert isinstance(make_act("silu"), torch.nn.SiLU)
    with pytest.raises(ValueError, match="'bilinear' is a preset"):
        Fusion("bilinear")  # the blocks resolve presets; a bare Fusion takes ops
    with pytest.raises(ValueError, match="already registered"):
        register_op("bilinear")(lambda a, b: a * b)


def test_register_op_checks_out_mult():
    from starnet.ops import op_out_mult
    assert op_out_mult("star") == 1 and op_out_mult("concat") == 2
    with pytest.raises(ValueError, match="out_mult must be 1"):
        register_op("bad_test", out_mult=3)
    with pytest.raises(ValueError, match="element-wise merges only"):
        register_op("bad_test", kernel_code=0, out_mult=2)
    assert "bad_test" not in FUSION_OPS


def test_branch_widths_keep_star_widths_for_element_wise_ops_and_solve_concat():
    from starnet.ops import branch_widths, fusion_width
    for op in ("star", "sum", "max", "gate"):
        assert branch_widths(op, 8, 24) == (24, 24) and fusion_width(op, 24, 24) == 24
    # concat: H (2d + 1) = hidden (3d + 2) -> H = 24 * 26 / 17 = 36.7 -> 37, split 19 + 18, projected from 37
    assert branch_widths("concat", 8, 24) == (19, 18) and fusion_width("concat", 19, 18) == 37
    for dim in range(1, 200):
        h1, h2 = branch_widths("concat", dim, 3 * dim)
        count = (h1 + h2) * (2 * dim + 1)  # the width-dependent parameters of a block (the docstring's rule)
        assert 0 <= h1 - h2 <= 1 and abs(count - 3 * dim * (3 * dim + 2)) <= dim + 0.5


def params(model):
    return sum(p.numel() for p in model.parameters())


ZOO = sorted(FUSION_OPS) + ["bilinear", "glu", "reglu", "geglu", "swiglu"]


@pytest.mark.parametrize("op", ZOO)
def test_every_op_has_stars_parameter_count(op):
    """The op zoo compares ops at equal size: every registered op and preset within 1% of star's count, DemoNet at
    the protocol's widths and depths (and the paper's ImageNet stem), StarNet's S050 and S1, the 2-D DemoNet."""
    from demonet import DemoNet, PointDemoNet
    from starnet import create_starnet
    cases = [(lambda op, w=w, d=d: DemoNet(w, d, op=op, num_classes=10, in_chans=1, patch_size=4))
             for w in (6, 8, 12, 16, 32, 48) for d in (1, 2, 12)]
    cases += [lambda op: DemoNet(96, 12, op=op), lambda op: PointDemoNet(8, 4, op=op)]
    cases += [lambda op, v=v: create_starnet(v, op=op, num_classes=10) for v in ("s050", "s1")]
    for make in cases:
        star, other = params(make("star")), params(make(op))
        assert abs(other - star) <= 0.01 * star, (op, star, other)


@pytest.mark.parametrize("op", ZOO)
def test_every_op_trains_in_both_models(op):
    """Forward and backward through DemoNet, StarNet (NCHW) and the 2-D DemoNet: shapes fit, gradients reach f."""
    from demonet import DemoNet, PointDemoNet
    from starnet import create_starnet
    for model, x in ((DemoNet(8, 2, op=op, num_classes=10, in_chans=1, patch_size=4), torch.randn(2, 1, 28, 28)),
                     (create_starnet("s050", op=op, num_classes=10, width=8, depths=[1, 1, 1, 1]),
                      torch.randn(2, 3, 32, 32)),
                     (PointDemoNet(8, 2, op=op), torch.randn(5, 2))):
        model(x).sum().backward()
        assert all(p.grad is not None for p in model.parameters())


# -- an op by import path ---------------------------------------------------------------------------------------
@pytest.fixture
def user_ops(tmp_path, monkeypatch):
    """A module ``zoo_user_ops`` on sys.path, the way a user's own package would be; its ops are unregistered after."""
    (tmp_path / "zoo_user_ops.py").write_text(
        "import torch\n"
        "def tanh_star(a, b):\n    return a * torch.tanh(b)\n"
        "def both(a, b, dim=-1):\n    return torch.cat([a * b, a + b], dim=dim)\n"
        "both.out_mult = 2\n"
        "def one_arg(a):\n    return a\n"
        "def wrong_width(a, b):\n    return torch.cat([a, b], dim=-1)\n"
        "def no_dim(a, b):\n    return torch.cat([a, b], dim=-1)\n"
        "no_dim.out_mult = 2\n"
        "NOT_A_FUNCTION = 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(FUSION_OPS)
    yield "zoo_user_ops"
    for name in set(FUSION_OPS) - before:
        FUSION_OPS.pop(name)


def test_an_op_by_import_path_is_registered_under_its_path(user_ops):
    from demonet import DemoNet
    from starnet.ops import op_kernel_code, op_out_mult
    path = f"{user_ops}:tanh_star"
    a, b = torch.randn(3, 4), torch.randn(3, 4)
    torch.testing.assert_close(get_op(path)(a, b), a * torch.tanh(b))
    assert path in FUSION_OPS and op_kernel_code(path) is None and op_out_mult(path) == 1
    assert get_op(path) is FUSION_OPS[path]  # imported once
    net = DemoNet(8, 2, op=path, num_classes=10, in_chans=1, patch_size=4)
    assert net.blocks[0].fuse.op == path and net(torch.randn(1, 1, 28, 28)).shape == (1, 10)
    wide = f"{user_ops}:both"  # declares out_mult = 2: star's parameter count through branch_widths
    assert op_out_mult(wide) == 2
    assert abs(params(DemoNet(8, 12, op=wide)) - params(DemoNet(8, 12))) <= 0.01 * params(DemoNet(8, 12))


@pytest.mark.parametrize("attr,message", [
    ("nothere", "module 'zoo_user_ops' has no 'nothere'"),
    ("NOT_A_FUNCTION", "is not callable"),
    ("one_arg", r"calling it as fn\(a, b\) on two \(2, 3\) tensors failed \(TypeError"),
    ("wrong_width", r"must give a \(2, 3\) tensor \(out_mult=1\), got \(2, 6\)"),
    ("no_dim", r"calling it as fn\(a, b, dim=-1\) on two \(2, 3\) tensors failed \(TypeError: .*unexpected keyword "
               r"argument 'dim'\); an op with out_mult = 2 is given the channel dim to join along: def fn\(a, b, dim\)"),
])
def test_a_bad_import_path_is_one_line(user_ops, attr, message):
    with pytest.raises(ValueError, match=message) as info:
        get_op(f"{user_ops}:{attr}")
    assert "\n" not in str(info.value) and f"{user_ops}:{attr}" not in FUSION_OPS


def test_a_missing_module_says_where_it_was_looked_for():
    with pytest.raises(ValueError, match=r"op 'no_such_pkg.ops:fn': cannot import module 'no_such_pkg.ops' "
                                         r"\(ModuleNotFoundError: .*\); is its directory on PYTHONPATH\?"):
        get_op("no_such_pkg.ops:fn")
    with pytest.raises(ValueError, match="module:function"):
        get_op("no_such_pkg.ops:")
