name	taxonomy_id	taxonomy_lvl	kraken_assigned_reads	added_reads	new_est_reads	fraction_total_reads
Faecalibacterium	216851	G	5120	0	5120	0.51200
Bacteroides	816	G	3080	0	3080	0.30800
Escherichia	561	G	1500	0	1500	0.15000
Akkermansia	239934	G	300	0	300	0.03000
