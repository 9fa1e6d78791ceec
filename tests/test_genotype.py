"""Tests for gradnas.genotype: parsing, round trips, equality and every error path."""

import dataclasses
import json
import subprocess
import sys

import pytest

from gradnas.genotype import (
    DARTS_V1,
    DARTS_V2,
    PC_DARTS,
    PRIMITIVES,
    PUBLISHED,
    Genotype,
    GenotypeError,
    get_genotype,
)

# Published text, verbatim from the genotypes.py files (DARTS, Liu et al. 2019;
# PC-DARTS, Xu et al. 2020), as written there.
DARTS_V1_TEXT = "DARTS_V1 = Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 0)], reduce_concat=[2, 3, 4, 5])"  # noqa: E501
DARTS_V2_TEXT = "DARTS_V2 = Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"  # noqa: E501
PC_DARTS_TEXT = "PC_DARTS_cifar = Genotype(normal=[('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 0), ('dil_conv_3x3', 1), ('sep_conv_5x5', 0), ('sep_conv_3x3', 1), ('avg_pool_3x3', 0), ('dil_conv_3x3', 1)], normal_concat=range(2, 6), reduce=[('sep_conv_5x5', 1), ('max_pool_3x3', 0), ('sep_conv_5x5', 1), ('sep_conv_5x5', 2), ('sep_conv_3x3', 0), ('sep_conv_3x3', 3), ('sep_conv_3x3', 1), ('sep_conv_3x3', 2)], reduce_concat=range(2, 6))"  # noqa: E501

# A derivation that keeps argmax edges: nodes with 0, 1 and 3 inputs.
VARIABLE = Genotype(
    normal=[[], [("skip_connect", 1)], [("sep_conv_3x3", 0), ("none", 2), ("avg_pool_3x3", 3)]],
    normal_concat=[2, 3, 4],
    reduce=[[("max_pool_3x3", 0), ("max_pool_3x3", 1)], [("skip_connect", 2)], []],
    reduce_concat=[2, 3, 4],
)

SMALL = {
    "normal": [[["sep_conv_3x3", 0], ["skip_connect", 1]]],
    "normal_concat": [2],
    "reduce": [[["max_pool_3x3", 0], ["max_pool_3x3", 1]]],
    "reduce_concat": [2],
}


def test_primitives_are_the_darts_ops_in_darts_order():
    assert PRIMITIVES == (
        "none",
        "max_pool_3x3",
        "avg_pool_3x3",
        "skip_connect",
        "sep_conv_3x3",
        "sep_conv_5x5",
        "dil_conv_3x3",
        "dil_conv_5x5",
    )


def test_module_does_not_import_torch():
    code = "import sys, gradnas.genotype; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- published genotypes -------------------------------------------------------------


def test_published_darts_v2_text_parses_to_builtin():
    assert Genotype.parse(DARTS_V2_TEXT) == DARTS_V2


def test_published_darts_v1_text_parses_to_builtin():
    assert Genotype.parse(DARTS_V1_TEXT) == DARTS_V1


def test_published_pc_darts_text_with_range_parses_to_builtin():
    assert Genotype.parse(PC_DARTS_TEXT) == PC_DARTS
    assert PC_DARTS.normal_concat == (2, 3, 4, 5)


def test_darts_v2_range_form_equals_list_form():
    text = DARTS_V2_TEXT.replace("[2, 3, 4, 5]", "range(2, 6)")
    assert "range(2, 6)" in text
    assert Genotype.parse(text) == DARTS_V2


def test_darts_v2_node_structure():
    assert len(DARTS_V2.normal) == 4
    assert DARTS_V2.normal[3] == (("skip_connect", 0), ("dil_conv_3x3", 2))
    assert DARTS_V2.reduce[1] == (("skip_connect", 2), ("max_pool_3x3", 1))


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_genotypes_validate_with_four_steps(name):
    assert PUBLISHED[name].validate(steps=4) is PUBLISHED[name]


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_str_parse_round_trip(name):
    g = PUBLISHED[name]
    assert Genotype.parse(str(g)) == g


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_dict_and_json_round_trip(name):
    g = PUBLISHED[name]
    assert Genotype.from_dict(g.to_dict()) == g
    assert Genotype.from_json(g.to_json()) == g


def test_darts_alias_is_v2():
    assert get_genotype("DARTS") is DARTS_V2


def test_get_genotype_by_name():
    assert get_genotype("PC_DARTS") is PC_DARTS


def test_get_genotype_unknown_lists_known_names():
    with pytest.raises(GenotypeError, match=r"unknown genotype 'NOPE'.*DARTS_V2"):
        get_genotype("NOPE")


# --- str / dict / JSON forms --------------------------------------------------------


def test_str_uses_flat_darts_form_for_two_input_nodes():
    s = str(DARTS_V2)
    assert s.startswith(
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0)"
    )
    assert "normal_concat=[2, 3, 4, 5]" in s and "[[" not in s


def test_str_uses_nested_form_for_variable_in_degree():
    assert str(VARIABLE).startswith(
        "Genotype(normal=[[], [('skip_connect', 1)], [('sep_conv_3x3', 0)"
    )


def test_variable_in_degree_str_round_trip():
    assert Genotype.parse(str(VARIABLE)) == VARIABLE


def test_uniform_three_input_nodes_round_trip_through_str():
    pairs = [("none", 0), ("none", 1), ("skip_connect", 0), ("none", 1), ("none", 2), ("none", 0)]
    g = Genotype.from_flat(pairs, [2, 3], pairs, [2, 3], inputs_per_node=3)
    assert "[[" in str(g) and Genotype.parse(str(g)) == g


def test_variable_in_degree_json_round_trip():
    assert Genotype.from_json(VARIABLE.to_json()) == VARIABLE


def test_variable_in_degree_validates():
    assert VARIABLE.validate(steps=3) is VARIABLE


def test_to_dict_layout_is_json_friendly():
    g = Genotype.from_dict(SMALL)
    assert g.to_dict() == SMALL
    assert json.loads(g.to_json()) == SMALL


def test_from_flat_groups_by_inputs_per_node():
    pairs = [("none", 0), ("none", 1), ("skip_connect", 0), ("none", 1), ("none", 2), ("none", 0)]
    g = Genotype.from_flat(pairs, [2, 3], pairs, [2, 3], inputs_per_node=3)
    assert g.normal == (tuple(pairs[:3]), tuple(pairs[3:]))
    assert len(g.reduce) == 2


def test_from_flat_rejects_length_not_divisible():
    with pytest.raises(
        GenotypeError, match=r"reduce: 3 pairs is not a multiple of inputs_per_node=2"
    ):
        Genotype.from_flat([("none", 0), ("none", 1)], [2], [("none", 0)] * 3, [2])


def test_from_flat_rejects_non_positive_inputs_per_node():
    with pytest.raises(GenotypeError, match="inputs_per_node"):
        Genotype.from_flat([], [2], [], [2], inputs_per_node=0)


# --- equality and hashing -----------------------------------------------------------


def test_lists_and_tuples_give_equal_genotypes():
    from_lists = Genotype.from_dict(SMALL)
    from_tuples = Genotype(
        ((("sep_conv_3x3", 0), ("skip_connect", 1)),),
        (2,),
        ((("max_pool_3x3", 0), ("max_pool_3x3", 1)),),
        (2,),
    )
    assert from_lists == from_tuples


def test_equal_genotypes_hash_equal():
    a, b = Genotype.from_dict(SMALL), Genotype.parse(str(Genotype.from_dict(SMALL)))
    assert hash(a) == hash(b) and len({a, b}) == 1


def test_different_genotypes_are_not_equal():
    assert DARTS_V1 != DARTS_V2 and len({DARTS_V1, DARTS_V2}) == 2


def test_genotype_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        DARTS_V2.normal = ()


# --- parse: accepted syntax -----------------------------------------------------------


def test_parse_accepts_double_quotes_tuples_newlines_order_and_trailing_comma():
    text = """
    arch = Genotype(
        reduce_concat = (2,),  # comment
        reduce = (("max_pool_3x3", 0), ("max_pool_3x3", 1)),
        normal_concat = range(2, 3),
        normal = [("sep_conv_3x3", 0), ('skip_connect', 1),],
    )
    """
    assert Genotype.parse(text) == Genotype.from_dict(SMALL)


def test_parse_range_with_one_argument():
    text = str(Genotype.from_dict(SMALL)).replace("normal_concat=[2]", "normal_concat=range(3)")
    assert Genotype.parse(text).normal_concat == (0, 1, 2)


def test_parse_nested_form():
    g = Genotype.parse(
        "Genotype(normal=[[('sep_conv_3x3', 0), ('skip_connect', 1)], [('none', 2)]],"
        " normal_concat=[2, 3], reduce=[[], [('skip_connect', 0)]], reduce_concat=[3])"
    )
    assert g.normal[1] == (("none", 2),) and g.reduce[0] == ()


# --- parse: rejected syntax -----------------------------------------------------------


def test_parse_rejects_import_call():
    with pytest.raises(GenotypeError, match=r"expected 'Genotype'.*'__import__'"):
        Genotype.parse("__import__('os')")


def test_parse_rejects_code_inside_a_field():
    with pytest.raises(GenotypeError, match=r"position \d+: expected a string, int, list"):
        Genotype.parse(DARTS_V2_TEXT.replace("[2, 3, 4, 5]", "__import__('os')", 1))


def test_parse_rejects_unknown_keyword():
    with pytest.raises(GenotypeError, match="unknown keyword 'normal_concatt'"):
        Genotype.parse(DARTS_V2_TEXT.replace("normal_concat", "normal_concatt"))


def test_parse_rejects_missing_keyword():
    text = "Genotype(normal=[], normal_concat=[2], reduce=[])"
    with pytest.raises(GenotypeError, match="missing keyword.*reduce_concat"):
        Genotype.parse(text)


def test_parse_rejects_duplicate_keyword():
    with pytest.raises(GenotypeError, match="keyword 'normal' given twice"):
        Genotype.parse(
            "Genotype(normal=[], normal=[], normal_concat=[2], reduce=[], reduce_concat=[2])"
        )


def test_parse_rejects_trailing_text():
    with pytest.raises(GenotypeError, match="expected end, found 'x'"):
        Genotype.parse(DARTS_V2_TEXT + " x")


def test_parse_rejects_unknown_character():
    with pytest.raises(GenotypeError, match=r"unexpected character '\.' at position 0"):
        Genotype.parse(".Genotype()")


def test_parse_rejects_truncated_text():
    with pytest.raises(GenotypeError, match="found end of text"):
        Genotype.parse(DARTS_V2_TEXT[: DARTS_V2_TEXT.index(", normal_concat")])


def test_parse_rejects_unterminated_string():
    with pytest.raises(GenotypeError, match="position 17: unterminated string"):
        Genotype.parse("Genotype(normal=['sep_conv_3x3, 0)])")


def test_parse_rejects_odd_flat_pair_count():
    with pytest.raises(
        GenotypeError, match="normal: flat form needs an even number of pairs, got 1"
    ):
        Genotype.parse(
            "Genotype(normal=[('none', 0)], normal_concat=[2], reduce=[], reduce_concat=[2])"
        )


def test_parse_rejects_mixed_flat_and_nested():
    with pytest.raises(GenotypeError, match="reduce: mixes flat"):
        Genotype.parse(
            "Genotype(normal=[], normal_concat=[2], "
            "reduce=[('none', 0), [('none', 1)]], reduce_concat=[2])"
        )


def test_parse_rejects_non_text():
    with pytest.raises(GenotypeError, match="expected genotype text"):
        Genotype.parse(None)


# --- from_dict / from_json / constructor errors -----------------------------------------


def test_from_dict_rejects_missing_key():
    d = {k: v for k, v in SMALL.items() if k != "reduce_concat"}
    with pytest.raises(GenotypeError, match="missing key.*reduce_concat"):
        Genotype.from_dict(d)


def test_from_dict_rejects_unknown_key():
    with pytest.raises(GenotypeError, match="unknown key.*steps"):
        Genotype.from_dict({**SMALL, "steps": 4})


def test_from_dict_rejects_non_mapping():
    with pytest.raises(GenotypeError, match="expected a dict"):
        Genotype.from_dict([1, 2])


def test_from_dict_rejects_non_int_index():
    d = {**SMALL, "normal": [[["sep_conv_3x3", "0"], ["skip_connect", 1]]]}
    with pytest.raises(
        GenotypeError, match=r"normal, node 0, edge 0: index must be an int, got '0'"
    ):
        Genotype.from_dict(d)


def test_from_dict_rejects_bool_index():
    d = {**SMALL, "reduce": [[["max_pool_3x3", 0], ["max_pool_3x3", True]]]}
    with pytest.raises(
        GenotypeError, match=r"reduce, node 0, edge 1: index must be an int, got True"
    ):
        Genotype.from_dict(d)


def test_from_dict_rejects_negative_index():
    d = {**SMALL, "normal": [[["sep_conv_3x3", -1], ["skip_connect", 1]]]}
    with pytest.raises(GenotypeError, match=r"normal, node 0, edge 0: index must be >= 0, got -1"):
        Genotype.from_dict(d)


def test_from_dict_rejects_non_str_op():
    d = {**SMALL, "normal": [[[3, 0], ["skip_connect", 1]]]}
    with pytest.raises(GenotypeError, match=r"normal, node 0, edge 0: op name must be"):
        Genotype.from_dict(d)


def test_from_dict_rejects_op_with_quote():
    d = {**SMALL, "normal": [[["it's", 0], ["skip_connect", 1]]]}
    with pytest.raises(GenotypeError, match="op name must be"):
        Genotype.from_dict(d)


def test_from_dict_rejects_edge_that_is_not_a_pair():
    d = {**SMALL, "normal": [[["sep_conv_3x3", 0, 1]]]}
    with pytest.raises(
        GenotypeError, match=r"normal, node 0, edge 0: expected an \(op, index\) pair"
    ):
        Genotype.from_dict(d)


def test_from_dict_rejects_node_that_is_not_a_list():
    with pytest.raises(GenotypeError, match="reduce, node 0: expected a list of edges"):
        Genotype.from_dict({**SMALL, "reduce": ["max_pool_3x3"]})


def test_from_dict_rejects_cell_that_is_not_a_list():
    with pytest.raises(GenotypeError, match="normal: expected a list of nodes"):
        Genotype.from_dict({**SMALL, "normal": "sep_conv_3x3"})


def test_from_dict_rejects_bad_concat():
    with pytest.raises(GenotypeError, match=r"normal_concat\[1\]: index must be an int"):
        Genotype.from_dict({**SMALL, "normal_concat": [2, 3.0]})


def test_from_dict_rejects_concat_that_is_not_a_list():
    with pytest.raises(GenotypeError, match="reduce_concat: expected a list of ints, got int"):
        Genotype.from_dict({**SMALL, "reduce_concat": 2})


def test_from_json_wraps_decode_errors():
    with pytest.raises(GenotypeError, match="invalid genotype JSON"):
        Genotype.from_json("{not json")


# --- validate -----------------------------------------------------------------------


def test_validate_catches_unknown_op():
    g = Genotype.from_flat([("conv_9x9", 0), ("none", 1)], [2], [("none", 0), ("none", 1)], [2])
    with pytest.raises(GenotypeError, match=r"normal cell, node 0, edge 0: unknown op 'conv_9x9'"):
        g.validate()


def test_validate_accepts_custom_primitives():
    g = Genotype.from_flat(
        [("conv_9x9", 0), ("conv_9x9", 1)], [2], [("conv_9x9", 0), ("conv_9x9", 1)], [2]
    )
    assert g.validate(primitives=["conv_9x9"]) is g


def test_validate_catches_input_index_beyond_its_node():
    # Node 1 may read inputs 0..2 (c_{k-2}, c_{k-1}, node 0); 3 is itself.
    g = Genotype.from_flat(
        [("none", 0), ("none", 1), ("none", 0), ("none", 3)],
        [2, 3],
        [("none", 0), ("none", 1), ("none", 0), ("none", 2)],
        [2, 3],
    )
    with pytest.raises(
        GenotypeError, match=r"normal cell, node 1, edge 1: input index 3 out of range 0\.\.2"
    ):
        g.validate()


def test_validate_catches_wrong_node_count():
    with pytest.raises(GenotypeError, match="normal cell has 4 nodes, expected steps=5"):
        DARTS_V2.validate(steps=5)


def test_validate_catches_concat_out_of_range():
    g = dataclasses.replace(DARTS_V2, reduce_concat=(2, 3, 4, 5, 6))
    with pytest.raises(GenotypeError, match=r"reduce_concat: index 6 out of range 0\.\.5"):
        g.validate()


def test_validate_catches_empty_concat():
    g = dataclasses.replace(DARTS_V2, normal_concat=())
    with pytest.raises(GenotypeError, match="normal_concat is empty"):
        g.validate()


def test_validate_catches_duplicate_concat():
    g = dataclasses.replace(DARTS_V2, normal_concat=[2, 2])
    with pytest.raises(GenotypeError, match="normal_concat has duplicate"):
        g.validate()
