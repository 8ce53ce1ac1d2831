import unittest

from offload._schema import SchemaError, check, problems

FIB = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0, "maximum": 90}},
       "required": ["n"], "additionalProperties": False}


class SchemaTest(unittest.TestCase):
    def test_accepts_what_fits(self) -> None:
        self.assertEqual(problems({"n": 5}, FIB, "input"), [])
        self.assertEqual(problems({"n": 5.0}, FIB, "input"), [])

    def test_names_every_field_that_does_not_fit(self) -> None:
        self.assertEqual(problems({"n": 91, "m": 1}, FIB, "input"), [
            ("input.n", "must be <= 90"),
            ("input.m", "unknown field"),
        ])
        self.assertEqual(problems({}, FIB, "input"), [("input.n", "is required")])
        self.assertEqual(problems({"n": True}, FIB, "input"), [("input.n", "must be integer, not boolean")])
        self.assertEqual(problems([], FIB, "input"), [("input", "must be object, not array")])

    def test_strings_arrays_and_combinators(self) -> None:
        schema = {
            "type": "object",
            "properties": {
                "tags": {"type": "array", "items": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5},
                         "maxItems": 2, "uniqueItems": True},
                "mode": {"enum": ["fast", "exact"]},
                "either": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                "ratio": {"type": "number", "exclusiveMinimum": 0, "multipleOf": 0.5},
            },
        }
        self.assertEqual(problems({"tags": ["ab"], "mode": "fast", "either": None, "ratio": 1.5}, schema, "input"), [])
        self.assertEqual(problems({"tags": ["AB", "toolong", "x"], "mode": "slow", "either": 3, "ratio": 0.3},
                                  schema, "input"), [
            ("input.tags", "must have at most 2 items"),
            ("input.tags.0", "must match ^[a-z]+$"),
            ("input.tags.1", "must have at most 5 characters"),
            ("input.mode", 'must be one of ["fast", "exact"]'),
            ("input.either", "must match at least one of anyOf"),
            ("input.ratio", "must be a multiple of 0.5"),
        ])

    def test_bounds_the_problems_it_reports(self) -> None:
        wide = {"type": "object", "additionalProperties": False}
        self.assertEqual(len(problems({f"k{i}": i for i in range(1000)}, wide, "input")), 20)

    def test_check_raises_with_the_problems(self) -> None:
        with self.assertRaises(SchemaError) as raised:
            check({"n": -1}, FIB, "input")
        self.assertEqual(str(raised.exception), "input.n: must be >= 0")


if __name__ == "__main__":
    unittest.main()
