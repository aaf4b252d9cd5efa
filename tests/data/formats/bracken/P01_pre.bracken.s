name	taxonomy_id	taxonomy_lvl	kraken_assigned_reads	added_reads	new_est_reads	fraction_total_reads
Faecalibacterium prausnitzii	853	S	4966	154	5120	0.51200
Bacteroides uniformis	820	S	2987	93	3080	0.30800
Escherichia coli	562	S	1455	45	1500	0.15000
Akkermansia muciniphila	239935	S	291	9	300	0.03000
