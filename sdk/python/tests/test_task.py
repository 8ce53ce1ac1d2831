import unittest

from offload import task
from offload._tasks import declared

OBJECT = {"type": "object"}


class TaskDecoratorTest(unittest.TestCase):
    def test_declares_a_task_with_its_catalog_entry(self) -> None:
        @task(name="unit.square", input=OBJECT, output=OBJECT, queue="maths", timeout_ms=5000, attempts=3,
              backoff={"type": "fixed", "delay": 250}, max_input_bytes=1024)
        def square(input, ctx):
            """Squares a number.

            More words that stay out of the description."""
            return {"value": input["n"] ** 2}

        spec = next(s for s in declared() if s.name == "unit.square")
        self.assertIs(spec.run, square)
        self.assertEqual(square({"n": 3}, None), {"value": 9})
        self.assertEqual(spec.catalog_entry(), {
            "name": "unit.square",
            "description": "Squares a number.",
            "queue": "maths",
            "input": OBJECT,
            "output": OBJECT,
            "defaults": {"timeoutMs": 5000, "attempts": 3, "backoff": {"type": "fixed", "delay": 250}},
            "maxInputBytes": 1024,
        })

    def test_defaults(self) -> None:
        @task(name="unit.defaults", input=OBJECT, output=OBJECT)
        def defaults(input, ctx):
            return {}

        entry = next(s for s in declared() if s.name == "unit.defaults").catalog_entry()
        self.assertEqual(entry["queue"], "default")
        self.assertEqual(entry["description"], "")
        self.assertNotIn("maxInputBytes", entry)
        self.assertEqual(entry["defaults"], {"timeoutMs": 60_000, "attempts": 1,
                                             "backoff": {"type": "exponential", "delay": 1000}})

    def test_refuses_bad_declarations_with_a_clear_error(self) -> None:
        cases = [
            ({"name": "has space"}, ValueError, "task name 'has space'"),
            ({"name": "unit.q", "queue": "a:b"}, ValueError, "queue 'a:b'"),
            ({"name": "unit.t", "timeout_ms": 10}, ValueError, "timeout_ms must be an integer from 100"),
            ({"name": "unit.a", "attempts": 26}, ValueError, "attempts must be an integer from 1 to 25"),
            ({"name": "unit.b", "backoff": {"type": "linear", "delay": 1}}, ValueError, "backoff must be"),
            ({"name": "unit.s", "input": "not a schema"}, TypeError, "input must be a JSON Schema"),
        ]
        for overrides, error, message in cases:
            with self.subTest(overrides=overrides):
                options = {"input": OBJECT, "output": OBJECT, **overrides}
                with self.assertRaisesRegex(error, message):
                    task(**options)(lambda input, ctx: None)

    def test_refuses_a_name_declared_twice(self) -> None:
        task(name="unit.twice", input=OBJECT, output=OBJECT)(lambda input, ctx: None)
        with self.assertRaisesRegex(ValueError, 'task "unit.twice" is declared twice'):
            task(name="unit.twice", input=OBJECT, output=OBJECT)(lambda input, ctx: None)


if __name__ == "__main__":
    unittest.main()
