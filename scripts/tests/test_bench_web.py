"""scripts/bench-web weighs what a browser loads and nothing else, and finds what leaves the box."""

import importlib.machinery
import os
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
bench = importlib.machinery.SourceFileLoader("bench_web", os.path.join(HERE, "..", "bench-web")).load_module()

PAGE = """<!doctype html><html><head>
<link rel="stylesheet" href="/style.css"><link rel="icon" href="/icon.svg">
<link rel="canonical" href="http://elsewhere.example/"><style>body{background:url('/bg.png')}</style>
<script src="https://cdn.example/app.js"></script></head>
<body><a href="/settings">settings</a><img src="logo.png"><div style="background: url(data:image/png;base64,AAAA)">
<form action="/setup" method="post"></form></body></html>"""


class BenchWebTest(unittest.TestCase):
    def test_subresources_are_what_a_browser_loads(self):
        self.assertEqual(bench.subresources(PAGE),
                         ["/style.css", "/icon.svg", "/bg.png", "https://cdn.example/app.js", "logo.png"])

    def test_subresources_on_another_host_leave_the_box(self):
        page = "http://127.0.0.1:8080/setup"
        outside = [u for u in bench.subresources(PAGE) if bench.leaves_the_box(u, page)]
        self.assertEqual(outside, ["https://cdn.example/app.js"])
        self.assertTrue(bench.leaves_the_box("//cdn.example/x.js", page))
        self.assertTrue(bench.leaves_the_box("http://127.0.0.1:9999/x.js", page))
        self.assertFalse(bench.leaves_the_box("http://127.0.0.1:8080/x.js", page))

    def test_percentiles_are_nearest_rank(self):
        values = list(range(1, 101))
        self.assertEqual(bench.percentile(values, 50), 50)
        self.assertEqual(bench.percentile(values, 99), 99)
        self.assertEqual(bench.percentile([7], 99), 7)
        self.assertEqual(bench.percentile([3, 1, 2], 100), 3)


if __name__ == "__main__":
    unittest.main()
