"""The seed catalogue: achievements in Russian and English (seed 002 asks for imagination).

Each entry has a stable id derived from its slug, so loading the catalogue twice adds
nothing the second time.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

CATALOGUE_NAMESPACE = uuid.UUID("5b3f1d0e-6a0c-4c1e-9a57-0002a0c41e5e")


@dataclass(frozen=True)
class CatalogueEntry:
    slug: str
    points: int
    ru: tuple[str, str] | None
    en: tuple[str, str] | None

    @property
    def id(self) -> uuid.UUID:
        return uuid.uuid5(CATALOGUE_NAMESPACE, self.slug)


CATALOGUE: tuple[CatalogueEntry, ...] = (
    CatalogueEntry(
        "first-light",
        5,
        ("Первый луч", "Вошли в систему впервые. Солнце взошло специально для вас."),
        ("First Light", "Logged in for the first time. The sun rose just for you."),
    ),
    CatalogueEntry(
        "night-owl",
        15,
        ("Сова-полуночница", "Сделали что-то полезное между тремя и пятью утра. Зачем?"),
        ("Night Owl", "Did something useful between 3 and 5 a.m. Why, though?"),
    ),
    CatalogueEntry(
        "early-bird",
        15,
        ("Жаворонок", "Начали день раньше будильника, а будильник обиделся."),
        ("Early Bird", "Started the day before the alarm clock did. It took offence."),
    ),
    CatalogueEntry(
        "seven-days",
        70,
        ("Неделя без выходных", "Получали награды семь дней подряд. Отдых для слабых."),
        ("Seven-Day Wonder", "Earned awards seven days in a row. Weekends are a myth."),
    ),
    CatalogueEntry(
        "tea-sommelier",
        10,
        ("Чайный сомелье", "Отличили улун от пуэра с закрытыми глазами."),
        ("Tea Sommelier", "Told oolong from pu-erh with your eyes closed."),
    ),
    CatalogueEntry(
        "coffee-overflow",
        20,
        ("Переполнение кофейного стека", "Пятая чашка до обеда. Стек не выдержал."),
        ("Coffee Stack Overflow", "Fifth cup before lunch. The stack gave up."),
    ),
    CatalogueEntry(
        "rubber-duck",
        25,
        ("Утиная отладка", "Объяснили баг резиновой уточке, и он исчез от стыда."),
        ("Rubber Duck Whisperer", "Explained a bug to a rubber duck; the bug left in shame."),
    ),
    CatalogueEntry(
        "it-works-on-mine",
        5,
        ("У меня всё работает", "Произнесли сакральную фразу при свидетелях."),
        ("Works on My Machine", "Said the sacred words in front of witnesses."),
    ),
    CatalogueEntry(
        "friday-deploy",
        50,
        ("Пятничный релиз", "Выкатили в прод в пятницу вечером и выжили."),
        ("Friday Deployer", "Shipped to production on a Friday evening and lived."),
    ),
    CatalogueEntry(
        "tab-hoarder",
        10,
        ("Коллекционер вкладок", "Открыли сто вкладок и помните, зачем каждая."),
        ("Tab Hoarder", "Opened a hundred browser tabs and remember why each one."),
    ),
    CatalogueEntry(
        "cat-approved",
        30,
        ("Одобрено котом", "Кот прошёлся по клавиатуре, и код стал лучше."),
        ("Cat Approved", "The cat walked across the keyboard and the code improved."),
    ),
    CatalogueEntry(
        "inbox-zero",
        40,
        ("Пустой ящик", "Разобрали всю почту. Почта в шоке."),
        ("Inbox Zero", "Answered every email. The emails are in shock."),
    ),
    CatalogueEntry(
        "polyglot",
        35,
        ("Полиглот", "Поздоровались на пяти языках, включая SQL."),
        ("Polyglot", "Said hello in five languages, SQL included."),
    ),
    CatalogueEntry(
        "borscht-master",
        20,
        ("Магистр борща", "Сварили борщ, который бабушка назвала «почти как у меня»."),
        ("Borscht Master", "Cooked a borscht that Grandma called 'almost like mine'."),
    ),
    CatalogueEntry(
        "dacha-survivor",
        25,
        ("Дачный выживальщик", "Пережили выходные на даче без интернета и с грядками."),
        ("Dacha Survivor", "Survived a weekend at the dacha with no internet and many beds."),
    ),
    CatalogueEntry(
        "plot-twist",
        15,
        ("Неожиданный поворот", "Угадали концовку сериала с первой серии."),
        ("Plot Twist Prophet", "Guessed the ending of a series from its first episode."),
    ),
    CatalogueEntry(
        "houseplant",
        10,
        ("Зелёный палец", "Кактус прожил у вас больше года. Рекорд района."),
        ("Green Thumb", "Kept a cactus alive for over a year. A local record."),
    ),
    CatalogueEntry(
        "marathon",
        100,
        ("Марафонец", "Пробежали 42 километра. Или 42 раза до холодильника, мы не судим."),
        ("Marathoner", "Ran 42 kilometres. Or to the fridge 42 times; we do not judge."),
    ),
    CatalogueEntry(
        "one-more-turn",
        20,
        ("Ещё один ход", "Сказали «ещё один ход» и увидели рассвет."),
        ("One More Turn", "Said 'just one more turn' and then saw the sunrise."),
    ),
    CatalogueEntry(
        "regex-wizard",
        45,
        ("Повелитель регулярок", "Написали регулярное выражение и через неделю его поняли."),
        ("Regex Wizard", "Wrote a regular expression and understood it a week later."),
    ),
    CatalogueEntry(
        "legacy-archaeologist",
        40,
        ("Археолог легаси", "Нашли в коде комментарий 2009 года «временно»."),
        ("Legacy Archaeologist", "Found a comment from 2009 that says 'temporary'."),
    ),
    CatalogueEntry(
        "snow-shoveler",
        15,
        ("Укротитель сугробов", "Откопали машину до того, как приехал трактор."),
        ("Snow Tamer", "Dug the car out before the snowplough arrived."),
    ),
    CatalogueEntry(
        "metro-navigator",
        10,
        ("Штурман метро", "Сделали три пересадки и ни разу не посмотрели на схему."),
        ("Metro Navigator", "Made three transfers without once looking at the map."),
    ),
    CatalogueEntry(
        "quiet-hero",
        30,
        ("Тихий герой", "Починили чужой тест и никому не сказали."),
        ("Quiet Hero", "Fixed someone else's flaky test and told no one."),
    ),
    CatalogueEntry(
        "meeting-escape",
        25,
        ("Побег с совещания", "Совещание, которое могло быть письмом, стало письмом."),
        ("Meeting Escape Artist", "The meeting that could have been an email became one."),
    ),
    CatalogueEntry(
        "hundred-percent",
        60,
        ("Сто процентов", "Довели покрытие тестами до ста процентов. Честно."),
        ("One Hundred Percent", "Reached full test coverage. Honestly."),
    ),
    CatalogueEntry(
        "pelmeni-engineer",
        20,
        ("Инженер пельменей", "Слепили сто пельменей одинакового размера."),
        ("Dumpling Engineer", "Folded a hundred pelmeni of identical size."),
    ),
    CatalogueEntry(
        "time-traveller",
        35,
        ("Путешественник во времени", "Исправили баг, который ещё не успели написать."),
        ("Time Traveller", "Fixed a bug before anyone had written it."),
    ),
    CatalogueEntry(
        "quintet",
        55,
        ("Квинтет", "Воспользовались всеми пятью сервисами за один день."),
        ("Quintet", "Used all five services in a single day."),
    ),
    CatalogueEntry(
        "only-russian",
        12,
        # Deliberately Russian only: the English catalogue shows it through the fallback.
        ("Авоська", "Ушли в магазин с одной авоськой, вернулись с тремя."),
        None,
    ),
)
