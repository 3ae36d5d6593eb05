# Two commands on a fresh machine: `make run` (quick profile end to end) and `make test`.
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-stamp
# Stages run as `python -m stages.<name>` from dvc.yaml: the venv must come first on PATH for them.
export PATH := $(CURDIR)/$(BIN):$(PATH)
# dataset mirror as an absolute path: queued experiments run in copies under .dvc/tmp/exps
export OSR_DATA_MIRROR ?= $(abspath $(CURDIR)/../shared/datasets)
export DVC_NO_ANALYTICS=1 ITERATIVE_DO_NOT_TRACK=1 DO_NOT_TRACK=1 \
       PREFECT_SERVER_ANALYTICS_ENABLED=false GX_ANALYTICS_ENABLED=false

.PHONY: help install run restore lint test test-fast bench frontier recipes own-folder device-rehearsal exp dry exps suite ablation confirm report serve tune deploy worker grid dashboard diff clean

help:  ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (.*)/  make \1\t\2/' | expand -t 18

install: $(STAMP)  ## create .venv and install the pinned packages (run by every target)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e ".[dev]"
	$(BIN)/pip check
	touch $(STAMP)

run: install  ## dvc repro: the pipeline on the profile in params.yaml (quick by default), then a summary
	$(BIN)/dvc repro
	@$(BIN)/python -m cli.summary

restore: install  ## after a failed dvc repro: every output dvc.lock records, back in place (docs/dvc.md)
	$(BIN)/python -m cli.restore

lint: install  ## ruff: pycodestyle, pyflakes, import order, pyupgrade (config in pyproject.toml; CI runs it first)
	$(BIN)/ruff check .

TEST_JOBS ?= 2
test: install  ## the full test suite (what CI runs): TEST_JOBS pytest-xdist workers, one test file each at a time
	$(BIN)/python -m pytest -q -n $(TEST_JOBS) --dist loadfile

test-fast: install  ## the edit loop: unit tests only, no pipeline runs (pytest -m 'not slow')
	$(BIN)/python -m pytest -q -m 'not slow'

bench: install  ## CPU throughput benchmark -> bench/results/
	$(BIN)/python -m bench.throughput

frontier: install  ## the quick teacher's quality against CPU minutes, before and after -> bench/results/frontier.*
	$(BIN)/dvc repro split
	$(BIN)/python -m bench.frontier

recipes: install  ## make run's exported classifier, recipe before and after, side by side -> bench/results/recipes.*
	$(BIN)/python -m bench.recipes

own-folder: install  ## the quick profile on a folder of MNIST PNGs, and its pixel floor -> reports/own-folder.json
	$(BIN)/python -m bench.own_folder

# The device check on the GPU machine's software (Python 3.12, torch 2.11.0, torchvision 0.26.0, triton 3.6.0 and
# the packages below, nothing else of ours), on the CPU: bench/rehearse.sh. Downloads a second torch (about 1 GB,
# kept in REHEARSAL_VENV outside the repository, so it never travels to the device): not in CI; run it before a lease.
PY312           ?= python3.12
REHEARSAL_VENV  ?= $(HOME)/.cache/osr-device-rehearsal
REHEARSAL_PKGS  := torch==2.11.0 torchvision==0.26.0 triton==3.6.0 numpy pandas scikit-learn scipy matplotlib tqdm \
                   PyYAML Pillow
device-rehearsal:  ## the device check on the GPU machine's Python 3.12 / torch 2.11 software, on the CPU (not CI)
	test -x $(REHEARSAL_VENV)/bin/python || $(PY312) -m venv $(REHEARSAL_VENV)
	$(REHEARSAL_VENV)/bin/pip install -q $(REHEARSAL_PKGS)
	mkdir -p data_carry && cp "$(OSR_DATA_MIRROR)/cifar10_jpeg.npz" data_carry/
	bash bench/rehearse.sh $(REHEARSAL_VENV)/bin/python

# One DVC experiment that keeps its profile and benchmark: every `dvc exp run -S` recomposes params.yaml from
# conf/'s defaults (profile quick, benchmark cifar10), so a profile set by an earlier run does not carry over; this
# target passes both every time. e.g. make exp PROFILE=tiny SET="distill.tau=4 split.index=1" NAME=tau4
SET  ?=
NAME ?=
# cli.exp checks the overrides first (Hydra's composition, then check_params' rules): a bad one fails in one line.
exp: install  ## one dvc exp run on PROFILE and BENCH (always passed: -S does not carry over), plus SET, NAME
	$(BIN)/python -m cli.exp $(if $(NAME),-n $(NAME)) -S 'profile=$(PROFILE)' -S 'benchmark=$(BENCH)' \
		$(foreach s,$(SET),-S '$(s)')

# `dvc exp run --dry` runs in a temporary copy of the repository without data/, and DVC 3.67.1 then fails on the
# first changed stage with a missing dependency (docs/dvc.md); --copy-paths data gives the copy the workspace's data.
dry: install  ## stages whose deps or params `make exp` would change (PROFILE BENCH SET): dvc exp run --dry
	$(BIN)/python -m cli.exp --dry --copy-paths data -S 'profile=$(PROFILE)' \
		-S 'benchmark=$(BENCH)' $(foreach s,$(SET),-S '$(s)')

# `dvc exp show` with model quality only, and the params that differ: the student's test accuracy, AUROC and OSCR
# (MLS), the teacher's AUROC and the relabel hard fraction, where they vary. --drop hides the deps (paths), the
# creation time, the run's info, the training stages' final loss, FPR95, the export's operating point, candidates
# with the reason, and noise share, and the other columns; --keep protects these.
EXP_KEEP := student\.test\.(acc|mls\.auroc|mls\.oscr)$$|teacher\.test\.mls\.auroc$$|hard_fraction$$
EXP_DROP := Created|[a-z_]+/|info\.|final\.|(teacher|student)\.test\.|test\.|candidates\.|threshold$$|noise_accepted$$|chosen_because$$
exps: install  ## dvc exp show: student acc, AUROC, OSCR (MLS), teacher AUROC, changed params only (ARGS: more flags)
	$(BIN)/dvc exp show --no-pager --only-changed --drop '$(EXP_DROP)' --keep '$(EXP_KEEP)' $(ARGS)

# Benchmark grid as queued DVC experiments (resumable: finished cells are skipped), then the report.
# e.g. make suite PROFILE=paper BENCH=cifar10,tinyimagenet SPLITS=0-4 RECIPES=ce-none,ce-cutmix,asym-cutmix
# Recipes and seeds: study/grid.py; ablation variants (asym-cutmix+no_jmi) and each profile's default recipes:
# conf/study/grid.yaml. JOBS=2 runs two cells at once.
PROFILE ?= quick
BENCH   ?= cifar10
SPLITS  ?= 0-4
SEEDS   ?=
RECIPES ?=
JOBS    ?= 1
POLL    ?=
POLL_FLAG = $(if $(POLL),--poll $(POLL))
suite: install  ## benchmark grid as queued DVC experiments, then the report (PROFILE BENCH SPLITS SEEDS RECIPES JOBS POLL)
	$(BIN)/python -m study.suite --profile $(PROFILE) --benchmark $(BENCH) --splits $(SPLITS) $(if $(SEEDS),--seeds $(SEEDS)) \
		--jobs $(JOBS) $(POLL_FLAG) $(if $(RECIPES),--recipes $(RECIPES))
	$(BIN)/python -m study.report --profile $(PROFILE)

# The claims study's ablation on split 0 of the claims profile (conf/study/grid.yaml `ablation`): three seeds of the
# seed-noise recipes (the yardstick), then one seed of every variant. Resumable like `make suite`.
ablation: install  ## the claims study's split-0 ablation (conf/study/grid.yaml; JOBS POLL), then the report
	$(BIN)/python -m study.suite --ablation --jobs $(JOBS) $(POLL_FLAG)
	$(MAKE) report

# The confirmatory study (conf/study/confirmatory.yaml): its claims were committed before any of its cells ran; the
# grid runs JOBS partitions at a time and resumes where it stopped. e.g. make confirm JOBS=2 POLL=120
confirm: install  ## the confirmatory study's grid (conf/study/confirmatory.yaml; JOBS POLL), then the report
	$(BIN)/python -m study.suite --study conf/study/confirmatory.yaml --jobs $(JOBS) $(POLL_FLAG)
	$(MAKE) report

# The committed reports are the claims profile's: finished experiments are archived in reports/experiments/, then
# docs/study.md, reports/answer.{md,png} and README.md's answer table are generated from the reports.
report: install  ## the claims study's reports (suite.md, claims.json, ablation.md), docs/study.md, README's answer
	$(BIN)/python -m study.report --profile claims
	$(BIN)/python -m study.document

# Tuning: `prefect server start` (127.0.0.1:4200) in one terminal, `make serve` in another, then `make tune`.
# (Not named PREFECT_*: make exports command-line variables, and Prefect reads every PREFECT_* as a setting.)
TUNE_API    ?= http://127.0.0.1:4200/api
STUDY       ?= tune-asym
TRIALS      ?=

serve: install  ## serve the tune-asym/local Prefect deployment (needs a Prefect server at TUNE_API)
	PREFECT_API_URL=$(TUNE_API) $(BIN)/python -m flows.serve

# Report: reports/tuning/$(STUDY).json (+ reports/tuning/$(STUDY)/*.png). flows.submit is `prefect deployment run
# --watch` with one-line errors: no server, deployment not served (a run still Late after LATE s), a refused parameter.
LATE        ?= 120
tune: install  ## run the tune-asym deployment (TRIALS STUDY TUNE_API LATE)
	PREFECT_API_URL=$(TUNE_API) $(BIN)/python -m flows.submit $(if $(TRIALS),-p n_trials=$(TRIALS)) -p study_name=$(STUDY) \
		--late-timeout $(LATE)

# Work pool: the flows as deployments of a process work pool, run by `prefect worker start` on any machine
# (flows/deploy.py). SOURCE: the checkout flow runs start in (default this one) or a git URL they clone.
# e.g. make deploy POOL=gpu; make worker POOL=gpu (every machine); prefect deployment run tune-asym/pool -p seed=1
POOL    ?=
SOURCE  ?=
need-pool = $(if $(POOL),,$(error POOL is not set: e.g. make $@ POOL=gpu))
deploy: install  ## register tune-asym/pool and suite-cell/pool on work pool POOL (created if missing; SOURCE)
	$(need-pool)
	PREFECT_API_URL=$(TUNE_API) $(BIN)/python -m flows.deploy --pool $(POOL) $(if $(SOURCE),--source $(SOURCE))

worker: install  ## a process worker on POOL, one flow run at a time (start one per machine)
	$(need-pool)
	PREFECT_API_URL=$(TUNE_API) $(BIN)/prefect worker start --pool $(POOL) --limit 1

# The suite grid on the pool's workers (flows/suite_pool.py): cells pushed to REMOTE (git) and STORE (DVC remote
# URL; default: the repository's default DVC remote), then pulled here for the report. Needs `make deploy` first.
# e.g. make grid PROFILE=paper SPLITS=0-4 RECIPES=ce-none,asym-cutmix REMOTE=git@host:osr.git STORE=s3://bucket/osr
REMOTE  ?= origin
STORE   ?=
grid: install  ## the suite grid as suite-cell/pool flow runs, then dvc exp pull + report (REMOTE STORE, as suite)
	PREFECT_API_URL=$(TUNE_API) $(BIN)/python -m flows.suite_pool --profile $(PROFILE) --benchmark $(BENCH) \
		--splits $(SPLITS) $(if $(SEEDS),--seeds $(SEEDS)) $(if $(RECIPES),--recipes $(RECIPES)) \
		--git-remote $(REMOTE) $(if $(STORE),--dvc-remote $(STORE))

# optuna-dashboard is pinned in pyproject.toml's `dashboard` extra, installed once (its own stamp) with the rest.
DASH_STAMP := $(VENV)/.dashboard-stamp
$(DASH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install -q -e ".[dev,dashboard]"
	$(BIN)/pip check
	touch $(DASH_STAMP)

dashboard: $(DASH_STAMP)  ## optuna-dashboard (the `dashboard` extra) on the study's journal (STUDY)
	$(BIN)/optuna-dashboard --host 127.0.0.1 --port 8080 reports/tuning/$(STUDY).journal

# PR review: metrics and params of the workspace against main (or A=<rev> B=<rev>).
A ?= main
diff: install  ## dvc metrics/params diff of the workspace against A (default main) or A..B
	$(BIN)/dvc metrics diff $(A) $(B) --md
	$(BIN)/dvc params diff $(A) $(B) --md

clean:  ## remove data/ and DVC's cache and temp folders
	rm -rf data .dvc/tmp .dvc/cache
