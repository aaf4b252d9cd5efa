name	taxonomy_id	taxonomy_lvl	kraken_assigned_reads	added_reads	new_est_reads	fraction_total_reads
Faecalibacterium prausnitzii	853	S	1940	60	2000	0.22222
Bacteroides uniformis	820	S	5820	180	6000	0.66667
Akkermansia muciniphila	239935	S	970	30	1000	0.11111
