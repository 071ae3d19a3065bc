# eddy: the checked-in entry point. It configures on first use and
# delegates to the generated objs/Makefile.

PREFIX ?=
DESTDIR ?=
MAKEOBJS = $(MAKE) -f objs/Makefile

.PHONY: default build run check check-unit check-fuzz check-integration \
	fuzz install clean

default: build

# Re-run configure (with the options it was last given) when its inputs
# change.
objs/Makefile: configure auto/Makefile.in modules/modules.list
	./configure $(CONFIGURE_ARGS) $$(cat objs/configure.args 2>/dev/null)

build: objs/Makefile
	$(MAKEOBJS) all

run: build
	@mkdir -p logs
	objs/eddy -c conf/eddy.yaml

check: build
	$(MAKEOBJS) check

check-unit check-fuzz check-integration fuzz: objs/Makefile
	$(MAKEOBJS) $@

install: build
	$(MAKEOBJS) install $(if $(PREFIX),PREFIX=$(PREFIX)) DESTDIR=$(DESTDIR)

clean:
	rm -rf objs
