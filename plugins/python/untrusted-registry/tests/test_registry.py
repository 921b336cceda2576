"""Native tests of the plugin's pure logic (no Wasm, no bindings):

    python3 -m unittest discover -s tests      # from the plugin's directory
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

import registry  # noqa: E402
from registry import ImageRef, parse_image, parse_settings  # noqa: E402


class ParseImage(unittest.TestCase):
    def test_docker_hub_forms(self):
        self.assertEqual(parse_image("nginx"), ImageRef("docker.io", "library/nginx"))
        self.assertEqual(parse_image("nginx:1.25"), ImageRef("docker.io", "library/nginx", "1.25"))
        self.assertEqual(parse_image("xmrig/xmrig"), ImageRef("docker.io", "xmrig/xmrig"))
        self.assertEqual(parse_image("index.docker.io/library/redis:7"), ImageRef("docker.io", "library/redis", "7"))
        self.assertEqual(parse_image("registry-1.docker.io/bitnami/redis"), ImageRef("docker.io", "bitnami/redis"))

    def test_registries(self):
        self.assertEqual(parse_image("ghcr.io/acme/app:v1"), ImageRef("ghcr.io", "acme/app", "v1"))
        self.assertEqual(parse_image("localhost/app"), ImageRef("localhost", "app"))
        self.assertEqual(parse_image("Registry.Local:5000/shop/web:1.4"),
                         ImageRef("registry.local:5000", "shop/web", "1.4"))
        ip = parse_image("203.0.113.7:5000/tools/agent@sha256:" + "a" * 64)
        self.assertEqual(ip, ImageRef("203.0.113.7:5000", "tools/agent", "", "sha256:" + "a" * 64))
        self.assertTrue(ip.is_ip_literal())
        self.assertEqual(ip.host, "203.0.113.7")
        v6 = parse_image("[2001:db8::1]:5000/x/y:2")
        self.assertEqual(v6.registry, "[2001:db8::1]:5000")
        self.assertTrue(v6.is_ip_literal())
        self.assertFalse(parse_image("quay.io/a/b").is_ip_literal())

    def test_not_references(self):
        self.assertIsNone(parse_image(""))
        self.assertIsNone(parse_image("  "))
        self.assertIsNone(parse_image("sha256:" + "0" * 64))
        self.assertIsNone(parse_image("f" * 64))


class Trust(unittest.TestCase):
    def settings(self, **doc):
        import json
        settings, problems = parse_settings(json.dumps(doc))
        self.assertEqual(problems, [])
        return settings

    def test_defaults_trust_only_official_images(self):
        s = self.settings()
        self.assertIsNotNone(s.trust(parse_image("nginx")))
        self.assertIsNotNone(s.trust(parse_image("docker.io/library/python:3.12")))
        self.assertIsNone(s.trust(parse_image("xmrig/xmrig")))
        self.assertIsNone(s.trust(parse_image("ghcr.io/acme/app")))
        self.assertEqual(s.trusted_summary(), "docker.io/library (official images)")

    def test_entries(self):
        s = self.settings(trusted_registries=["ghcr.io/acme", "registry.local:5000", "*.corp.example",
                                              "https://quay.io/"], trust_docker_hub_official=False)
        trusted = ["ghcr.io/acme/app", "ghcr.io/acme/team/app:1", "registry.local:5000/x",
                   "r1.corp.example/a", "r1.corp.example:8443/a", "quay.io/anyone/x"]
        untrusted = ["ghcr.io/acme-evil/app", "ghcr.io/other/app", "registry.local/x",
                     "registry.local:5001/x", "corp.example/a", "evilcorp.example/a", "nginx"]
        for image in trusted:
            self.assertIsNotNone(s.trust(parse_image(image)), image)
        for image in untrusted:
            self.assertIsNone(s.trust(parse_image(image)), image)

    def test_docker_hub_entry_trusts_all_of_it(self):
        s = self.settings(trusted_registries=["index.docker.io"])
        self.assertIsNotNone(s.trust(parse_image("xmrig/xmrig")))


class Settings(unittest.TestCase):
    def test_every_problem_with_its_path(self):
        settings, problems = parse_settings(
            '{"trusted_registries": ["ok.io", "", 3, "a*.b", "x.io/@y"], "trust_docker_hub_official": "yes",'
            ' "ignored_namespaces": "kube-system", "colour": 1}')
        self.assertIsNone(settings)
        self.assertEqual([p for p, _ in problems], [
            "colour", "trusted_registries[1]", "trusted_registries[2]", "trusted_registries[3]",
            "trusted_registries[4]", "trust_docker_hub_official", "ignored_namespaces"])

    def test_not_an_object(self):
        self.assertEqual(parse_settings("[]")[1], [("", "must be a JSON object")])
        self.assertEqual(parse_settings("{")[1][0][0], "")

    def test_documented_settings_are_the_accepted_ones(self):
        names = [name for name, _, _, _ in registry.SETTINGS_DOC]
        self.assertEqual(sorted(names), ["ignored_namespaces", "trust_docker_hub_official", "trusted_registries"])


if __name__ == "__main__":
    unittest.main()
