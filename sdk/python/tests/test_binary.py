import unittest

from offload import BINARY_OUTPUT, Binary


class BinaryTest(unittest.TestCase):
    def test_keeps_bytes_and_a_media_type(self) -> None:
        result = Binary(bytearray(b"\x89PNG"), "image/png")
        self.assertEqual(result.data, b"\x89PNG")
        self.assertIsInstance(result.data, bytes)
        self.assertEqual(Binary(b"a,b\n", "text/csv; charset=utf-8").content_type, "text/csv; charset=utf-8")

    def test_refuses_what_is_not_a_media_type_or_not_bytes(self) -> None:
        for bad in ["png", "image/png\r\nx-evil: 1", "", "image/", "a" * 300 + "/b"]:
            with self.assertRaises(ValueError, msg=bad):
                Binary(b"x", bad)
        with self.assertRaises(TypeError):
            Binary("text", "text/plain")  # type: ignore[arg-type]

    def test_publishes_the_descriptor_as_its_output_schema(self) -> None:
        self.assertEqual(BINARY_OUTPUT["required"], ["contentType", "size", "url"])


if __name__ == "__main__":
    unittest.main()
