# eddy: the checked-in entry point. It configures on first use and
# delegates to the generated objs/Makefile.

PREFIX ?=
prefix ?=
DESTDIR ?=
MAKEOBJS = $(MAKE) -f objs/Makefile

.PHONY: default build run check check-unit check-fuzz check-integration \
	check-man check-fleet fuzz install clean

default: build

# Re-run configure (with the options it was last given) when its inputs
# change.
objs/Makefile: configure auto/Makefile.in modules/modules.list
	./configure $(CONFIGURE_ARGS) $$(cat objs/configure.args 2>/dev/null)

build: objs/Makefile
	$(MAKEOBJS) all

run: build
	@mkdir -p logs
	objs/eddy -p $(CURDIR) -c conf/eddy.yaml

check: build
	$(MAKEOBJS) check

check-unit check-fuzz check-integration check-man check-fleet fuzz: objs/Makefile
	$(MAKEOBJS) $@

# The paths are baked into the binary by ./configure: installing under
# another prefix than the configured one would leave a binary looking
# for its files elsewhere. DESTDIR stages an install (packages, tests).
install: build
	@want="$(or $(PREFIX),$(prefix))"; \
	have=$$(sed -n 's/^PREFIX = //p' objs/Makefile); \
	if [ -n "$$want" ] && [ "$${want%/}" != "$$have" ]; then \
	    echo "make install: the prefix is set by ./configure (now $$have);" \
	        "run ./configure --prefix=$$want, then make install" >&2; \
	    exit 1; \
	fi
	$(MAKEOBJS) install DESTDIR=$(DESTDIR)

clean:
	rm -rf objs
