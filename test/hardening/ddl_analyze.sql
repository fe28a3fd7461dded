-- DDL storm: ANALYZE the protected tables (relcache invalidations of them)
ANALYZE items;
ANALYZE parts;
