"""The default alias table: names of the region's capitals and of the Syria talks.

Each group lists every name an outlet may use for one place or process, across
scripts (Latin, Cyrillic), languages and renames. A rule file may add groups under
``aliases:``; a rule may turn expansion off with ``aliases: false``.
"""

from __future__ import annotations

DEFAULT_ALIASES: list[list[str]] = [
    # Kazakhstan's capital: Tselinograd (1961–1992), Astana, Nur-Sultan (2019–2022). Akmola, its
    # name in 1992–1998, is left out: today it names the Akmola Region around the city, whose
    # news would fire every Astana rule (add it to a rule's own aliases for archive searches)
    ["Astana", "Nur-Sultan", "Nursultan", "Tselinograd",
     "Астана", "Нур-Султан", "Нурсултан", "Целиноград", "Елорда"],
    ["Almaty", "Alma-Ata", "Alma Ata", "Алматы", "Алма-Ата"],
    ["Bishkek", "Frunze", "Бишкек", "Фрунзе"],
    ["Tashkent", "Toshkent", "Ташкент", "Тошкент"],
    ["Dushanbe", "Stalinabad", "Душанбе", "Сталинабад"],
    ["Ashgabat", "Ashkhabad", "Aşgabat", "Ашхабад", "Ашгабат"],
    ["Shymkent", "Chimkent", "Шымкент", "Чимкент"],
    ["Oskemen", "Ust-Kamenogorsk", "Өскемен", "Усть-Каменогорск"],
    # the Syria peace process hosted in Astana since 2017
    ["Astana talks", "Astana process", "Astana format", "Astana peace talks", "Nur-Sultan talks",
     "Nur-Sultan process", "Nur-Sultan format",
     "астанинские переговоры", "астанинский процесс", "астанинский формат", "переговоры в Астане",
     "переговоры в Нур-Султане", "Астанинская площадка"],
]
