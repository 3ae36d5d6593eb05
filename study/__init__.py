"""The claims study built on the method library: the grid of experiments (`grid`, `suite`), reading finished
experiments (`experiments`), aggregating them over partitions (`partitions`, `aggregate`, `claims`, `ablation`),
claim families, registration and Holm's correction (`families`, `registration`, `stats`) and writing the report
(`markdown`, `figures`, `report`). Its data (variants, suites, the ablation, claims) is declared in
conf/study/*.yaml and read by `spec`. `osr/` never imports this package."""
