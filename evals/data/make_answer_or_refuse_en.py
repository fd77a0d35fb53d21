"""Writes answer_or_refuse_en.jsonl: English answer-or-refuse rows over product, technical, policy and
encyclopedic documents, written for this project.

Each family is a few parallel subjects (three phones of one maker, three companies' handbooks, three
bridges) described by the same attributes, phrased several ways. A question asks one attribute of one
subject. Its `-pos` row holds the subject's two passages (one states the answer) and passages about
its siblings and a neighbouring family; its `-neg` row holds the same passages with the answering
sentence taken out (sometimes replaced by one that names the attribute without its value), so every
distractor shares the question's words and the siblings state the same attribute for another subject.

    .venv/bin/python evals/data/make_answer_or_refuse_en.py   # rewrites the .jsonl next to it
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

OUT = Path(__file__).with_name("answer_or_refuse_en.jsonl")


@dataclass
class Attr:
    questions: list[str]  # "{e}" is the subject
    statements: list[str]  # "{e}" the subject (or a pronoun), "{v}" the value
    values: dict[str, str]
    mentions: list[str] = field(default_factory=list)  # name the attribute, state no value


@dataclass
class Family:
    domain: str
    intros: dict[str, str]  # subject -> opening sentence
    attrs: list[Attr]
    pronoun: str = "It"  # how later sentences refer back to the subject ("" = they never do)


F: list[Family] = []

# ------------------------------------------------------------------ product
F.append(Family("product", {
    "Lumen X1": "The Lumen X1 was the first phone Corvid Mobile sold under its own name.",
    "Lumen X2": "The Lumen X2 is Corvid Mobile's mid-range phone aimed at students.",
    "Lumen X3": "The Lumen X3 is the flagship of Corvid Mobile's Lumen line.",
}, [
    Attr(["How much does the {e} weigh?", "What is the weight of the {e}?"],
         ["The {e} weighs {v}.", "At {v}, the {e} is easy to carry in one hand."],
         {"Lumen X1": "168 grams", "Lumen X2": "181 grams", "Lumen X3": "204 grams"},
         ["Corvid says the {e} was designed to feel light in the pocket."]),
    Attr(["When was the {e} released?", "What year did the {e} come out?"],
         ["The {e} went on sale in {v}.", "Corvid launched the {e} in {v}."],
         {"Lumen X1": "March 2019", "Lumen X2": "September 2021", "Lumen X3": "May 2023"},
         ["The launch of the {e} was delayed by component shortages."]),
    Attr(["How long does the battery of the {e} last?", "What is the battery life of the {e}?"],
         ["On a full charge the {e} lasts about {v} of mixed use.", "Its battery is rated for {v} of video playback."],
         {"Lumen X1": "19 hours", "Lumen X2": "26 hours", "Lumen X3": "31 hours"},
         ["Reviewers tested the battery of the {e} with screen brightness fixed at half."]),
    Attr(["How big is the screen of the {e}?", "What screen size does the {e} have?"],
         ["The {e} has an OLED display of {v}.", "Its display measures {v} across the diagonal."],
         {"Lumen X1": "5.8 inches", "Lumen X2": "6.4 inches", "Lumen X3": "6.7 inches"}),
    Attr(["Where is the {e} assembled?", "In which country is the {e} made?"],
         ["The {e} is assembled in {v}.", "Final assembly of the {e} takes place at a contract factory in {v}."],
         {"Lumen X1": "Vietnam", "Lumen X2": "India", "Lumen X3": "Mexico"},
         ["Corvid publishes an annual audit of the factories that build the {e}."]),
]))
F.append(Family("product", {
    "Veloce City": "The Veloce City is an electric bike built for short commutes on paved roads.",
    "Veloce Trail": "The Veloce Trail is an electric mountain bike with front and rear suspension.",
    "Veloce Cargo": "The Veloce Cargo is a long-tail electric bike that can carry two children.",
}, [
    Attr(["What is the range of the {e}?", "How far can the {e} go on one charge?"],
         ["With pedal assist on its lowest level the {e} covers up to {v}.", "Veloce rates the {e} for a range of {v}."],
         {"Veloce City": "90 km", "Veloce Trail": "65 km", "Veloce Cargo": "110 km"},
         ["Range on the {e} drops noticeably in cold weather."]),
    Attr(["How much does the {e} cost?", "What is the price of the {e}?"],
         ["The {e} sells for {v} in Europe.", "It is priced at {v} including the charger."],
         {"Veloce City": "2,290 euros", "Veloce Trail": "3,450 euros", "Veloce Cargo": "4,100 euros"},
         ["Prices for the {e} vary by dealer and region."]),
    Attr(["What is the top assisted speed of the {e}?", "How fast can the {e} go with assist?"],
         ["The motor of the {e} stops assisting at {v}.", "Assistance cuts out at {v}, the legal limit where it is sold."],
         {"Veloce City": "25 km/h", "Veloce Trail": "32 km/h", "Veloce Cargo": "20 km/h"}),
    Attr(["How long does it take to charge the {e}?", "What is the charging time of the {e}?"],
         ["A full charge of the {e} battery takes {v}.", "Its battery charges fully in {v} from a wall socket."],
         {"Veloce City": "four hours", "Veloce Trail": "six hours", "Veloce Cargo": "seven and a half hours"},
         ["The charger of the {e} can be used indoors only."]),
    Attr(["How heavy is the {e}?", "What does the {e} weigh?"],
         ["Without the battery the {e} weighs {v}.", "The frame and motor of the {e} come to {v}."],
         {"Veloce City": "19 kg", "Veloce Trail": "24 kg", "Veloce Cargo": "33 kg"}),
]))
F.append(Family("product", {
    "Brewlin Mini": "The Brewlin Mini is a compact espresso machine for small kitchens.",
    "Brewlin Pro": "The Brewlin Pro is a dual-boiler espresso machine for enthusiasts.",
    "Brewlin Studio": "The Brewlin Studio is a commercial espresso machine for cafes.",
}, [
    Attr(["How big is the water tank of the {e}?", "What is the water tank capacity of the {e}?"],
         ["The water tank of the {e} holds {v}.", "Its removable reservoir takes {v} of water."],
         {"Brewlin Mini": "1.2 litres", "Brewlin Pro": "2.5 litres", "Brewlin Studio": "6 litres"},
         ["The water tank of the {e} should be descaled every few months."]),
    Attr(["How long is the warranty on the {e}?", "What warranty comes with the {e}?"],
         ["Brewlin covers the {e} with a {v} warranty.", "The {e} carries a {v} warranty on parts and labour."],
         {"Brewlin Mini": "two-year", "Brewlin Pro": "three-year", "Brewlin Studio": "five-year"},
         ["Warranty claims for the {e} are handled by authorised dealers."]),
    Attr(["How long does the {e} take to heat up?", "What is the warm-up time of the {e}?"],
         ["The {e} is ready to brew about {v} after it is switched on.", "It heats up in roughly {v}."],
         {"Brewlin Mini": "90 seconds", "Brewlin Pro": "eight minutes", "Brewlin Studio": "twenty minutes"}),
    Attr(["Who designed the {e}?", "Which designer created the {e}?"],
         ["The {e} was designed by {v}.", "Industrial designer {v} drew the body of the {e}."],
         {"Brewlin Mini": "Hanna Lindqvist", "Brewlin Pro": "Marco Bellucci", "Brewlin Studio": "Yuki Tanabe"},
         ["The design of the {e} won praise for its clean lines."]),
    Attr(["What is the pump pressure of the {e}?", "How many bars of pressure does the {e} pump deliver?"],
         ["The pump of the {e} delivers {v} of pressure.", "Its vibratory pump is rated at {v}."],
         {"Brewlin Mini": "15 bar", "Brewlin Pro": "12 bar", "Brewlin Studio": "10 bar"}),
]))
F.append(Family("product", {
    "Sonara Air": "Sonara Air are entry-level wireless earbuds sold by Sonara Audio.",
    "Sonara Fit": "Sonara Fit are sport earbuds with ear hooks, sold by Sonara Audio.",
    "Sonara Studio": "Sonara Studio are noise-cancelling earbuds, the top of Sonara Audio's range.",
}, pronoun="They", attrs=[
    Attr(["How long do the {e} last on a charge?", "What is the battery life of the {e}?"],
         ["The {e} play for {v} before they need the case.", "Battery life of the {e} is {v} per charge."],
         {"Sonara Air": "five hours", "Sonara Fit": "nine hours", "Sonara Studio": "seven hours"},
         ["Battery life of the {e} depends on volume and on noise cancelling."]),
    Attr(["What water resistance rating do the {e} have?", "Are the {e} waterproof, and to what rating?"],
         ["The {e} are rated {v} against water and dust.", "They carry an {v} rating, so rain and sweat are no problem."],
         {"Sonara Air": "IPX4", "Sonara Fit": "IP67", "Sonara Studio": "IPX5"}),
    Attr(["How much do the {e} cost?", "What is the price of the {e}?"],
         ["The {e} retail for {v}.", "Sonara sells the {e} for {v} in its online store."],
         {"Sonara Air": "49 dollars", "Sonara Fit": "89 dollars", "Sonara Studio": "179 dollars"},
         ["Sonara occasionally discounts the {e} during holiday sales."]),
    Attr(["Which Bluetooth version do the {e} use?", "What Bluetooth version is in the {e}?"],
         ["The {e} connect over Bluetooth {v}.", "They use Bluetooth {v} and support two devices at once."],
         {"Sonara Air": "5.0", "Sonara Fit": "5.2", "Sonara Studio": "5.3"}),
    Attr(["What colours do the {e} come in?", "Which colours are the {e} available in?"],
         ["The {e} come in {v}.", "Buyers can choose between {v}."],
         {"Sonara Air": "white and black", "Sonara Fit": "lime green and graphite", "Sonara Studio": "sand and midnight blue"}),
]))
F.append(Family("product", {
    "Tidy R5": "The Tidy R5 is a budget robot vacuum made by Tidyware.",
    "Tidy R7": "The Tidy R7 is a robot vacuum with a mopping pad, made by Tidyware.",
    "Tidy R9": "The Tidy R9 is Tidyware's robot vacuum with a self-emptying dock.",
}, [
    Attr(["How long can the {e} run on one charge?", "What is the runtime of the {e}?"],
         ["The {e} cleans for up to {v} before returning to its dock.", "Its battery gives about {v} of cleaning."],
         {"Tidy R5": "90 minutes", "Tidy R7": "120 minutes", "Tidy R9": "150 minutes"},
         ["Runtime of the {e} is shorter on carpets at maximum suction."]),
    Attr(["What is the suction power of the {e}?", "How strong is the suction of the {e}?"],
         ["The {e} pulls {v} of suction.", "Tidyware rates its suction at {v}."],
         {"Tidy R5": "2,000 Pa", "Tidy R7": "2,700 Pa", "Tidy R9": "4,000 Pa"}),
    Attr(["How much dust does the {e} bin hold?", "What is the dustbin capacity of the {e}?"],
         ["The dustbin of the {e} holds {v}.", "Its bin takes {v} of debris."],
         {"Tidy R5": "0.4 litres", "Tidy R7": "0.45 litres", "Tidy R9": "0.3 litres"},
         ["The dustbin of the {e} can be rinsed under the tap."]),
    Attr(["How loud is the {e}?", "What noise level does the {e} reach?"],
         ["On its standard setting the {e} runs at about {v}.", "It is rated at {v} in quiet mode."],
         {"Tidy R5": "62 decibels", "Tidy R7": "58 decibels", "Tidy R9": "55 decibels"}),
    Attr(["When did Tidyware launch the {e}?", "When was the {e} released?"],
         ["Tidyware launched the {e} in {v}.", "The {e} reached stores in {v}."],
         {"Tidy R5": "October 2020", "Tidy R7": "April 2022", "Tidy R9": "February 2024"},
         ["The {e} launch was accompanied by a new mobile app."]),
]))

# ------------------------------------------------------------------ technical
F.append(Family("technical", {
    "Tallowdb": "Tallowdb is an open-source time-series database.",
    "Quillstore": "Quillstore is an open-source document database for small teams.",
    "Marlin KV": "Marlin KV is an embedded key-value store.",
}, [
    Attr(["What port does {e} listen on by default?", "Which default port does {e} use?"],
         ["By default {e} listens on port {v}.", "The server accepts connections on TCP port {v} unless configured otherwise."],
         {"Tallowdb": "8186", "Quillstore": "27450", "Marlin KV": "7711"},
         ["The listening port of {e} can be changed in the configuration file."]),
    Attr(["What language is {e} written in?", "Which programming language is {e} implemented in?"],
         ["{e} is written in {v}.", "The code base of {e} is almost entirely {v}."],
         {"Tallowdb": "Go", "Quillstore": "Rust", "Marlin KV": "C"}),
    Attr(["Where does {e} keep its configuration file?", "What is the path of the {e} configuration file?"],
         ["{e} reads its configuration from {v}.", "Its configuration lives in {v} on Linux."],
         {"Tallowdb": "/etc/tallowdb/tallow.toml", "Quillstore": "/etc/quillstore/quill.yaml", "Marlin KV": "~/.config/marlin/marlin.conf"},
         ["Every option of the {e} configuration file has a documented default."]),
    Attr(["Under which license is {e} released?", "What license does {e} use?"],
         ["{e} is released under the {v}.", "The project is distributed under the {v}."],
         {"Tallowdb": "MIT License", "Quillstore": "Apache License 2.0", "Marlin KV": "BSD 3-Clause License"},
         ["Contributors to {e} must sign off their commits before they are merged."]),
    Attr(["Who created {e}?", "Who started the {e} project?"],
         ["{e} was created by {v}.", "The project was started by {v} as a side project."],
         {"Tallowdb": "Priya Raman", "Quillstore": "Jonas Ekberg", "Marlin KV": "Tomasz Wilk"}),
]))
F.append(Family("technical", {
    "Ferncli": "Ferncli is a command-line tool for managing cloud storage buckets.",
    "Pebblesync": "Pebblesync is a command-line tool that mirrors folders between machines.",
    "Gullwatch": "Gullwatch is a command-line tool that watches log files and raises alerts.",
}, [
    Attr(["How do I install {e}?", "What command installs {e}?"],
         ["Install {e} with `{v}`.", "The recommended way to get {e} is `{v}`."],
         {"Ferncli": "pip install ferncli", "Pebblesync": "cargo install pebblesync", "Gullwatch": "brew install gullwatch"},
         ["Installing {e} needs network access to the package index."]),
    Attr(["What is the minimum Python version for {e}?", "Which Python version does {e} require?"],
         ["{e} requires Python {v} or later.", "It supports Python {v} and newer."],
         {"Ferncli": "3.9", "Pebblesync": "3.10", "Gullwatch": "3.8"},
         ["The Python requirement of {e} is checked at install time."]),
    Attr(["Which environment variable sets the {e} log level?", "How do I set the log level of {e}?"],
         ["Set the {v} environment variable to change how much {e} logs.", "The log level of {e} comes from {v}."],
         {"Ferncli": "FERN_LOG", "Pebblesync": "PEBBLE_LOG_LEVEL", "Gullwatch": "GULL_VERBOSITY"},
         ["{e} writes its log to standard error."]),
    Attr(["What does the {e} exit code 3 mean?", "What does exit status 3 from {e} indicate?"],
         ["Exit code 3 from {e} means {v}.", "When {e} exits with status 3, {v}."],
         {"Ferncli": "the credentials were rejected", "Pebblesync": "the remote machine could not be reached",
          "Gullwatch": "a watched file was deleted"},
         ["{e} documents its exit codes in the manual page."]),
    Attr(["How often does {e} check for changes by default?", "What is the default polling interval of {e}?"],
         ["{e} polls every {v} unless told otherwise.", "Its default interval between checks is {v}."],
         {"Ferncli": "60 seconds", "Pebblesync": "15 seconds", "Gullwatch": "2 seconds"}),
]))
F.append(Family("technical", {
    "Orbit 2": "Orbit 2 is the second major version of the Orbit web framework.",
    "Orbit 3": "Orbit 3 is the current major version of the Orbit web framework.",
    "Orbit 4": "Orbit 4 is the upcoming major version of the Orbit web framework, now in beta.",
}, [
    Attr(["When was {e} released?", "What is the release date of {e}?"],
         ["{e} was released on {v}.", "The first stable build of {e} shipped on {v}."],
         {"Orbit 2": "June 4, 2018", "Orbit 3": "November 12, 2021", "Orbit 4": "January 20, 2025"},
         ["The release notes of {e} list every breaking change."]),
    Attr(["Until when is {e} supported?", "When does support for {e} end?"],
         ["Security fixes for {e} continue until {v}.", "{e} reaches end of life in {v}."],
         {"Orbit 2": "December 2022", "Orbit 3": "December 2026", "Orbit 4": "December 2029"},
         ["The support policy for {e} follows the project's long-term plan."]),
    Attr(["Which template engine does {e} use?", "What templating engine ships with {e}?"],
         ["{e} renders pages with the {v} template engine.", "Its default templating engine is {v}."],
         {"Orbit 2": "Mustang", "Orbit 3": "Loom", "Orbit 4": "Loom 2"}),
    Attr(["What is the minimum Node.js version for {e}?", "Which Node.js version does {e} need?"],
         ["{e} needs Node.js {v} or newer.", "It runs on Node.js {v} and later."],
         {"Orbit 2": "8", "Orbit 3": "14", "Orbit 4": "20"},
         ["The Node.js requirement of {e} is stated in its package manifest."]),
    Attr(["Who leads the development of {e}?", "Who is the lead maintainer of {e}?"],
         ["Development of {e} is led by {v}.", "{v} is the lead maintainer of {e}."],
         {"Orbit 2": "Carla Mendes", "Orbit 3": "Daniel Osei", "Orbit 4": "Mei Hashimoto"}),
]))
F.append(Family("technical", {
    "HTTP/1.1": "HTTP/1.1 is the text-based version of the Hypertext Transfer Protocol.",
    "HTTP/2": "HTTP/2 is the binary, multiplexed version of the Hypertext Transfer Protocol.",
    "HTTP/3": "HTTP/3 is the version of the Hypertext Transfer Protocol that runs over QUIC.",
}, [
    Attr(["When was {e} standardised?", "In what year was {e} published as a standard?"],
         ["{e} was first published as a standard in {v}.", "The IETF standardised {e} in {v}."],
         {"HTTP/1.1": "1997", "HTTP/2": "2015", "HTTP/3": "2022"},
         ["Standardising {e} took several years of drafts."]),
    Attr(["Which transport protocol does {e} run over?", "What transport does {e} use?"],
         ["{e} runs over {v}.", "Its messages travel over {v}."],
         {"HTTP/1.1": "TCP", "HTTP/2": "TCP, usually with TLS", "HTTP/3": "QUIC, which runs over UDP"}),
    Attr(["Which RFC defines {e}?", "What is the RFC number of {e}?"],
         ["{e} is defined in {v}.", "The current specification of {e} is {v}."],
         {"HTTP/1.1": "RFC 9112", "HTTP/2": "RFC 9113", "HTTP/3": "RFC 9114"},
         ["The RFC for {e} has been revised since its first edition."]),
    Attr(["How does {e} compress headers?", "What header compression does {e} use?"],
         ["{e} compresses headers with {v}.", "Header compression in {e} is done by {v}."],
         {"HTTP/1.1": "nothing at all; headers are sent as plain text", "HTTP/2": "HPACK", "HTTP/3": "QPACK"}),
    Attr(["Can {e} send several requests at once over one connection?", "Does {e} support multiplexing?"],
         ["{e} {v}.", "On a single connection, {e} {v}."],
         {"HTTP/1.1": "handles one request at a time per connection, so browsers open several connections",
          "HTTP/2": "multiplexes many streams over one connection",
          "HTTP/3": "multiplexes streams that do not block each other when a packet is lost"}),
]))
F.append(Family("technical", {
    "Nimbus Queue": "Nimbus Queue is a managed message queue service.",
    "Nimbus Cache": "Nimbus Cache is a managed in-memory cache service.",
    "Nimbus Blob": "Nimbus Blob is a managed object storage service.",
}, [
    Attr(["What is the maximum message size in {e}?", "How large can an item stored in {e} be?"],
         ["{e} accepts items of up to {v}.", "The size limit for a single item in {e} is {v}."],
         {"Nimbus Queue": "256 KB", "Nimbus Cache": "1 MB", "Nimbus Blob": "5 TB"},
         ["Larger items are rejected by {e} with a clear error."]),
    Attr(["What is the uptime guarantee of {e}?", "What SLA does {e} offer?"],
         ["{e} is covered by a {v} availability commitment.", "The service level agreement for {e} promises {v} uptime."],
         {"Nimbus Queue": "99.9%", "Nimbus Cache": "99.95%", "Nimbus Blob": "99.99%"},
         ["Credits for missed uptime on {e} must be requested within thirty days."]),
    Attr(["In how many regions is {e} available?", "How many regions offer {e}?"],
         ["{e} is available in {v} regions.", "Customers can deploy {e} in {v} regions worldwide."],
         {"Nimbus Queue": "14", "Nimbus Cache": "9", "Nimbus Blob": "22"}),
    Attr(["How is {e} billed?", "What is the pricing model of {e}?"],
         ["{e} is billed {v}.", "Pricing for {e} is {v}."],
         {"Nimbus Queue": "per million requests", "Nimbus Cache": "per node-hour", "Nimbus Blob": "per gigabyte stored each month"},
         ["Billing for {e} appears on the monthly invoice."]),
    Attr(["How long does {e} keep data by default?", "What is the default retention period of {e}?"],
         ["By default {e} keeps data for {v}.", "Its default retention is {v}."],
         {"Nimbus Queue": "four days", "Nimbus Cache": "one hour", "Nimbus Blob": "an unlimited time, until it is deleted"}),
]))

# ------------------------------------------------------------------ policy / HR
F.append(Family("policy", {
    "Northwind Analytics": "This handbook sets out the employment policies of Northwind Analytics.",
    "Harbor & Pine": "This handbook sets out the employment policies of Harbor & Pine.",
    "Kestrel Labs": "This handbook sets out the employment policies of Kestrel Labs.",
}, [
    Attr(["How many days of annual leave do employees at {e} get?", "What is the annual leave allowance at {e}?"],
         ["Full-time staff at {e} receive {v} of paid annual leave.", "Every employee is entitled to {v} of paid holiday a year, plus public holidays."],
         {"Northwind Analytics": "25 days", "Harbor & Pine": "22 days", "Kestrel Labs": "30 days"},
         ["Annual leave at {e} must be booked through the HR portal."]),
    Attr(["What is the notice period at {e}?", "How much notice must an employee of {e} give before leaving?"],
         ["Employees of {e} who resign must give {v} of notice.", "The notice period is {v} for permanent staff."],
         {"Northwind Analytics": "one month", "Harbor & Pine": "six weeks", "Kestrel Labs": "three months"},
         ["Notice at {e} must be given in writing to the line manager."]),
    Attr(["How many days a week can staff at {e} work from home?", "What is the remote work policy at {e}?"],
         ["Staff at {e} may work from home {v}.", "Remote work is allowed {v}, agreed with the team lead."],
         {"Northwind Analytics": "up to three days a week", "Harbor & Pine": "two days a week",
          "Kestrel Labs": "on any day, with one office day a month"},
         ["Working from home at {e} requires a secure internet connection."]),
    Attr(["How long is the probation period at {e}?", "How long does probation last for new hires at {e}?"],
         ["New hires at {e} serve a probation period of {v}.", "Probation lasts {v}, after which a review takes place."],
         {"Northwind Analytics": "three months", "Harbor & Pine": "six months", "Kestrel Labs": "four months"},
         ["During probation at {e} the notice period is shorter."]),
    Attr(["Who approves expense claims at {e}?", "Who signs off on expenses at {e}?"],
         ["Expense claims at {e} are approved by {v}.", "Every claim must be signed off by {v} before it is paid."],
         {"Northwind Analytics": "the employee's line manager", "Harbor & Pine": "the finance director",
          "Kestrel Labs": "the head of the department"},
         ["Expense claims at {e} need receipts attached."]),
]))
F.append(Family("policy", {
    "Northwind Analytics": "This section covers family leave at Northwind Analytics.",
    "Harbor & Pine": "This section covers family leave at Harbor & Pine.",
    "Kestrel Labs": "This section covers family leave at Kestrel Labs.",
}, [
    Attr(["How many weeks of paid parental leave does {e} offer?", "How long is paid parental leave at {e}?"],
         ["{e} offers {v} of fully paid parental leave to every new parent.", "New parents receive {v} of parental leave on full pay."],
         {"Northwind Analytics": "16 weeks", "Harbor & Pine": "12 weeks", "Kestrel Labs": "20 weeks"},
         ["Parental leave at {e} can start before the child arrives."]),
    Attr(["How much notice is needed before starting parental leave at {e}?", "When must staff at {e} tell HR about parental leave?"],
         ["Staff at {e} should notify HR {v} before parental leave starts.", "HR needs to be told {v} ahead of the leave."],
         {"Northwind Analytics": "eight weeks", "Harbor & Pine": "fifteen weeks", "Kestrel Labs": "four weeks"}),
    Attr(["How many days of carer's leave does {e} give?", "What is the carer's leave allowance at {e}?"],
         ["{e} grants {v} of paid carer's leave a year.", "Employees caring for a relative may take {v} of paid carer's leave each year."],
         {"Northwind Analytics": "five days", "Harbor & Pine": "three days", "Kestrel Labs": "ten days"},
         ["Carer's leave at {e} does not reduce annual leave."]),
    Attr(["Can employees of {e} return part-time after parental leave?", "Does {e} allow part-time work after parental leave?"],
         ["After parental leave, employees of {e} {v}.", "Returning parents {v}."],
         {"Northwind Analytics": "may work four days a week for up to a year",
          "Harbor & Pine": "may request reduced hours, decided case by case",
          "Kestrel Labs": "may work half days for the first three months"}),
    Attr(["How many days of bereavement leave does {e} allow?", "What is the bereavement leave at {e}?"],
         ["{e} allows {v} of paid bereavement leave.", "Staff who lose a close relative may take {v} of paid leave."],
         {"Northwind Analytics": "five days", "Harbor & Pine": "seven days", "Kestrel Labs": "three days"},
         ["Bereavement leave at {e} is granted without documentation."]),
]))
F.append(Family("policy", {
    "Greywater University": "These are the library rules of Greywater University.",
    "Ashford College": "These are the library rules of Ashford College.",
    "Lakemont Institute": "These are the library rules of the Lakemont Institute.",
}, [
    Attr(["How long can students borrow books from the {e} library?", "What is the loan period at the {e} library?"],
         ["Students at {e} may borrow books for {v}.", "The standard loan period is {v}, renewable twice."],
         {"Greywater University": "three weeks", "Ashford College": "two weeks", "Lakemont Institute": "four weeks"},
         ["Loans from the {e} library can be renewed online."]),
    Attr(["What is the late fee at the {e} library?", "How much is the fine for overdue books at {e}?"],
         ["Overdue books at {e} cost {v}.", "The library charges a late fee of {v}."],
         {"Greywater University": "20 cents a day", "Ashford College": "50 cents a day", "Lakemont Institute": "1 dollar a week"},
         ["Late fees at {e} must be paid before graduation."]),
    Attr(["How many books can a student borrow at once from {e}?", "What is the borrowing limit at the {e} library?"],
         ["A student at {e} may hold up to {v} at once.", "The borrowing limit is {v} per student."],
         {"Greywater University": "15 books", "Ashford College": "10 books", "Lakemont Institute": "25 books"}),
    Attr(["When does the {e} library open on weekends?", "What are the weekend opening hours of the {e} library?"],
         ["On weekends the {e} library opens {v}.", "Weekend hours are {v}."],
         {"Greywater University": "from 10 am to 6 pm", "Ashford College": "from noon to 5 pm on Saturdays only",
          "Lakemont Institute": "from 9 am to 9 pm"},
         ["Weekend hours of the {e} library change during exams."]),
    Attr(["Where do I return books to the {e} library after hours?", "Where is the after-hours book return at {e}?"],
         ["After hours, books can be returned to {v}.", "The after-hours return slot at {e} is {v}."],
         {"Greywater University": "the drop box beside the main entrance", "Ashford College": "the slot in the porter's lodge",
          "Lakemont Institute": "the return machine in the student union"}),
]))
F.append(Family("policy", {
    "Meridian Health": "This is the travel policy of Meridian Health.",
    "Solace Energy": "This is the travel policy of Solace Energy.",
    "Brightwell Media": "This is the travel policy of Brightwell Media.",
}, [
    Attr(["What is the daily meal allowance at {e}?", "How much can staff at {e} spend on meals per day when travelling?"],
         ["Travellers at {e} may claim up to {v} a day for meals.", "The per diem for meals is {v}."],
         {"Meridian Health": "45 dollars", "Solace Energy": "60 dollars", "Brightwell Media": "38 dollars"},
         ["Meal receipts must be kept for every trip at {e}."]),
    Attr(["Can employees of {e} fly business class?", "When is business class allowed at {e}?"],
         ["At {e}, business class is allowed {v}.", "Staff may book business class {v}."],
         {"Meridian Health": "only for flights longer than eight hours", "Solace Energy": "for directors only",
          "Brightwell Media": "only with a director's written approval"},
         ["Flight class at {e} is set out in the booking tool."]),
    Attr(["How far in advance must trips be booked at {e}?", "What is the booking deadline for travel at {e}?"],
         ["Trips at {e} must be booked at least {v} ahead.", "Travel should be booked {v} before departure."],
         {"Meridian Health": "14 days", "Solace Energy": "three weeks", "Brightwell Media": "10 days"}),
    Attr(["Who books travel for {e} employees?", "Which agency handles travel bookings at {e}?"],
         ["Travel for {e} is booked through {v}.", "All bookings go through {v}."],
         {"Meridian Health": "Atlas Travel", "Solace Energy": "the internal travel desk", "Brightwell Media": "Wayfarer Corporate"},
         ["Bookings made outside the agreed channel are not reimbursed at {e}."]),
    Attr(["What is the hotel limit per night at {e}?", "How much can a hotel cost per night under the {e} policy?"],
         ["Hotels for {e} trips may cost up to {v} a night.", "The nightly hotel cap is {v}."],
         {"Meridian Health": "180 dollars", "Solace Energy": "220 dollars", "Brightwell Media": "150 dollars"},
         ["Hotel stays at {e} should be near the client site."]),
]))
F.append(Family("policy", {
    "Cobalt Bank": "This is the IT security policy of Cobalt Bank.",
    "Riverside Council": "This is the IT security policy of Riverside Council.",
    "Lark Logistics": "This is the IT security policy of Lark Logistics.",
}, [
    Attr(["What is the minimum password length at {e}?", "How long must passwords be at {e}?"],
         ["Passwords at {e} must be at least {v} long.", "Every account needs a password of {v} or more."],
         {"Cobalt Bank": "14 characters", "Riverside Council": "12 characters", "Lark Logistics": "10 characters"},
         ["Passwords at {e} may not reuse a previous one."]),
    Attr(["How often must passwords be changed at {e}?", "When do passwords expire at {e}?"],
         ["At {e}, passwords expire {v}.", "Users are asked to change their password {v}."],
         {"Cobalt Bank": "every 90 days", "Riverside Council": "only after a suspected compromise", "Lark Logistics": "every six months"}),
    Attr(["Who should security incidents at {e} be reported to?", "Where do I report a phishing email at {e}?"],
         ["Suspected incidents at {e} are reported to {v}.", "Report phishing and other incidents to {v}."],
         {"Cobalt Bank": "the Security Operations Centre", "Riverside Council": "the IT service desk",
          "Lark Logistics": "security@larklogistics.example"},
         ["Reporting an incident at {e} quickly limits the damage."]),
    Attr(["After how many minutes does a screen lock at {e}?", "How long before an idle computer locks at {e}?"],
         ["Computers at {e} lock after {v} without input.", "The idle screen lock triggers after {v}."],
         {"Cobalt Bank": "5 minutes", "Riverside Council": "10 minutes", "Lark Logistics": "15 minutes"}),
    Attr(["Can staff at {e} use personal USB drives?", "Are USB sticks allowed at {e}?"],
         ["At {e}, USB drives {v}.", "Personal USB drives {v}."],
         {"Cobalt Bank": "are blocked on every company machine", "Riverside Council": "may be used after a virus scan",
          "Lark Logistics": "are allowed only if encrypted"},
         ["Removable media at {e} is covered by this policy."]),
]))

# ------------------------------------------------------------------ encyclopedic
F.append(Family("encyclopedic", {
    "Golden Gate Bridge": "The Golden Gate Bridge is a suspension bridge at the entrance to San Francisco Bay.",
    "Brooklyn Bridge": "The Brooklyn Bridge is a hybrid cable-stayed and suspension bridge in New York City.",
    "Tower Bridge": "Tower Bridge is a combined bascule and suspension bridge in London.",
}, [
    Attr(["When did the {e} open?", "In what year was the {e} opened?"],
         ["The {e} opened to traffic in {v}.", "It was opened in {v} after years of construction."],
         {"Golden Gate Bridge": "1937", "Brooklyn Bridge": "1883", "Tower Bridge": "1894"},
         ["The opening of the {e} was celebrated with a public festival."]),
    Attr(["Who designed the {e}?", "Who was the engineer behind the {e}?"],
         ["The {e} was designed by {v}.", "Its design is credited to {v}."],
         {"Golden Gate Bridge": "Joseph Strauss", "Brooklyn Bridge": "John A. Roebling", "Tower Bridge": "Horace Jones"},
         ["The design of the {e} was controversial at first."]),
    Attr(["What river or strait does the {e} cross?", "What body of water does the {e} span?"],
         ["The {e} crosses {v}.", "It spans {v}."],
         {"Golden Gate Bridge": "the Golden Gate strait", "Brooklyn Bridge": "the East River", "Tower Bridge": "the River Thames"}),
    Attr(["What colour is the {e} painted?", "What is the colour of the {e}?"],
         ["The {e} is painted {v}.", "Its paintwork is {v}."],
         {"Golden Gate Bridge": "International Orange", "Brooklyn Bridge": "a light tan called Brooklyn Bridge Tan",
          "Tower Bridge": "blue and white"},
         ["Repainting the {e} is a continuous maintenance job."]),
    Attr(["How long is the main span of the {e}?", "What is the length of the {e}'s main span?"],
         ["The main span of the {e} is {v} long.", "Its central span measures {v}."],
         {"Golden Gate Bridge": "1,280 metres", "Brooklyn Bridge": "486 metres", "Tower Bridge": "61 metres"}),
]))
F.append(Family("encyclopedic", {
    "Marie Curie": "Marie Curie was a physicist and chemist who pioneered research on radioactivity.",
    "Alan Turing": "Alan Turing was a mathematician regarded as a founder of computer science.",
    "Ada Lovelace": "Ada Lovelace was a mathematician known for her notes on the Analytical Engine.",
}, [
    Attr(["Where was {e} born?", "In which city was {e} born?"],
         ["{e} was born in the city of {v}.", "{v} was the birthplace of {e}."],
         {"Marie Curie": "Warsaw", "Alan Turing": "London", "Ada Lovelace": "London"},
         ["The house where {e} was born is now marked with a plaque."]),
    Attr(["When was {e} born?", "What year was {e} born?"],
         ["{e} was born in {v}.", "Born in {v}, {e} grew up in a family that valued education."],
         {"Marie Curie": "1867", "Alan Turing": "1912", "Ada Lovelace": "1815"}),
    Attr(["When did {e} die?", "In what year did {e} die?"],
         ["{e} died in {v}.", "{e} died in {v}, leaving unfinished work behind."],
         {"Marie Curie": "1934", "Alan Turing": "1954", "Ada Lovelace": "1852"},
         ["The death of {e} was mourned by colleagues across Europe."]),
    Attr(["Who was {e} married to?", "Who was the spouse of {e}?"],
         ["{e} was married to {v}.", "{e} married {v}."],
         {"Marie Curie": "Pierre Curie", "Ada Lovelace": "William King"}),
    Attr(["What is {e} best known for?", "What is {e} famous for?"],
         ["{e} is best known for {v}.", "Today {e} is remembered above all for {v}."],
         {"Marie Curie": "the discovery of polonium and radium",
          "Alan Turing": "the Turing machine and code-breaking at Bletchley Park",
          "Ada Lovelace": "publishing what is often called the first computer program"},
         ["Biographies of {e} have appeared in many languages."]),
]))
F.append(Family("encyclopedic", {
    "Mars": "Mars is the fourth planet from the Sun.",
    "Venus": "Venus is the second planet from the Sun.",
    "Mercury": "Mercury is the smallest planet of the Solar System and the closest to the Sun.",
}, [
    Attr(["How many moons does {e} have?", "How many natural satellites does {e} have?"],
         ["{e} has {v}.", "It is orbited by {v}."],
         {"Mars": "two moons, Phobos and Deimos", "Venus": "no moons", "Mercury": "no moons"},
         ["Astronomers have searched for moons of {e} for more than a century."]),
    Attr(["How long is a year on {e}?", "How long does {e} take to orbit the Sun?"],
         ["{e} takes {v} to orbit the Sun.", "A year on {e} lasts {v}."],
         {"Mars": "687 Earth days", "Venus": "225 Earth days", "Mercury": "88 Earth days"}),
    Attr(["What is the atmosphere of {e} made of?", "What gas dominates the atmosphere of {e}?"],
         ["The atmosphere of {e} is {v}.", "Its atmosphere consists of {v}."],
         {"Mars": "thin and mostly carbon dioxide", "Venus": "thick and about 96 percent carbon dioxide",
          "Mercury": "almost absent, a trace of sodium and helium"},
         ["The atmosphere of {e} has been studied by several spacecraft."]),
    Attr(["What is the surface temperature of {e}?", "How hot does {e} get?"],
         ["Surface temperatures on {e} {v}.", "On {e} the surface temperature {v}."],
         {"Mars": "average about minus 60 degrees Celsius", "Venus": "reach about 465 degrees Celsius",
          "Mercury": "swing from minus 180 to 430 degrees Celsius"}),
    Attr(["Which spacecraft first visited {e}?", "What was the first probe to fly past {e}?"],
         ["The first spacecraft to visit {e} was {v}.", "{v} made the first successful flyby of {e}."],
         {"Mars": "Mariner 4", "Venus": "Mariner 2", "Mercury": "Mariner 10"},
         ["Missions to {e} are planned around favourable launch windows."]),
]))
F.append(Family("encyclopedic", {
    "Eiffel Tower": "The Eiffel Tower is a wrought-iron lattice tower in Paris.",
    "Statue of Liberty": "The Statue of Liberty is a copper statue on Liberty Island in New York Harbor.",
    "Sydney Opera House": "The Sydney Opera House is a performing arts centre on Sydney Harbour.",
}, [
    Attr(["When was the {e} completed?", "In which year was the {e} finished?"],
         ["The {e} was completed in {v}.", "Work on it finished in {v}."],
         {"Eiffel Tower": "1889", "Statue of Liberty": "1886", "Sydney Opera House": "1973"},
         ["Completing the {e} took longer than its builders expected."]),
    Attr(["Who designed the {e}?", "Who was the architect of the {e}?"],
         ["The {e} was designed by {v}.", "Its design is the work of {v}."],
         {"Eiffel Tower": "engineers of Gustave Eiffel's company", "Statue of Liberty": "Frederic Auguste Bartholdi",
          "Sydney Opera House": "Jorn Utzon"},
         ["The design of the {e} was chosen after a public debate."]),
    Attr(["How tall is the {e}?", "What is the height of the {e}?"],
         ["The {e} stands {v} tall.", "It rises to a height of {v}."],
         {"Eiffel Tower": "330 metres", "Statue of Liberty": "93 metres including its pedestal", "Sydney Opera House": "65 metres"}),
    Attr(["How many people visit the {e} each year?", "How many visitors does the {e} get annually?"],
         ["The {e} receives about {v} a year.", "Around {v} come to see it every year."],
         {"Eiffel Tower": "six million visitors", "Statue of Liberty": "four million visitors",
          "Sydney Opera House": "ten million visitors"},
         ["Visitor numbers at the {e} fell sharply in 2020."]),
    Attr(["What is the {e} made of?", "Which material was used to build the {e}?"],
         ["The {e} is built of {v}.", "Its structure is made of {v}."],
         {"Eiffel Tower": "puddled iron", "Statue of Liberty": "copper sheets over a steel frame",
          "Sydney Opera House": "precast concrete shells covered in tiles"}),
]))
F.append(Family("encyclopedic", {
    "Nile": "The Nile is a major river of north-eastern Africa.",
    "Danube": "The Danube is the second-longest river in Europe.",
    "Mekong": "The Mekong is a river of Southeast Asia.",
}, [
    Attr(["How long is the {e}?", "What is the length of the {e}?"],
         ["The {e} is about {v} long.", "It runs for roughly {v}."],
         {"Nile": "6,650 kilometres", "Danube": "2,850 kilometres", "Mekong": "4,900 kilometres"},
         ["Measuring the length of the {e} depends on where its source is taken to be."]),
    Attr(["Where does the {e} flow into the sea?", "Into which sea does the {e} empty?"],
         ["The {e} empties into {v}.", "Its mouth opens onto {v}."],
         {"Nile": "the Mediterranean Sea", "Danube": "the Black Sea", "Mekong": "the South China Sea"}),
    Attr(["Where does the {e} rise?", "Where is the source of the {e}?"],
         ["The {e} rises in {v}.", "Its source lies in {v}."],
         {"Nile": "the lakes of East Africa, with the White Nile and the Blue Nile joining at Khartoum",
          "Danube": "the Black Forest of Germany", "Mekong": "the Tibetan Plateau"},
         ["Explorers argued about the source of the {e} for generations."]),
    Attr(["How many countries does the {e} flow through?", "Through how many countries does the {e} pass?"],
         ["The {e} flows through {v}.", "Its course crosses {v}."],
         {"Nile": "eleven countries", "Danube": "ten countries", "Mekong": "six countries"}),
    Attr(["Which capital cities lie on the {e}?", "What capitals does the {e} pass through?"],
         ["Capitals on the {e} include {v}.", "The {e} passes {v}."],
         {"Nile": "Cairo and Khartoum", "Danube": "Vienna, Bratislava, Budapest and Belgrade", "Mekong": "Vientiane and Phnom Penh"},
         ["Cities along the {e} depend on it for water and trade."]),
]))
F.append(Family("encyclopedic", {
    "Apple Inc.": "Apple Inc. is an American technology company known for its consumer devices.",
    "Microsoft": "Microsoft is an American technology company known for its software.",
    "Samsung Electronics": "Samsung Electronics is a South Korean maker of electronics and chips.",
}, [
    Attr(["Who is the CEO of {e}?", "Who runs {e}?"],
         ["{v} has been the chief executive of {e} since {y}.", "The company is led by chief executive {v}."],
         {"Apple Inc.": "Tim Cook", "Microsoft": "Satya Nadella", "Samsung Electronics": "Jong-Hee Han"},
         ["The board of {e} reviews the chief executive's pay each year."]),
    Attr(["When was {e} founded?", "In what year was {e} established?"],
         ["{e} was founded in {v}.", "The company was established in {v}."],
         {"Apple Inc.": "1976", "Microsoft": "1975", "Samsung Electronics": "1969"}),
    Attr(["Who founded {e}?", "Who were the founders of {e}?"],
         ["{e} was founded by {v}.", "Its founders were {v}."],
         {"Apple Inc.": "Steve Jobs, Steve Wozniak and Ronald Wayne", "Microsoft": "Bill Gates and Paul Allen",
          "Samsung Electronics": "the Samsung Group under Lee Byung-chul"},
         ["The founding story of {e} is told in several books."]),
    Attr(["What does {e} sell?", "What products does {e} make?"],
         ["{e} sells {v}.", "Its main products are {v}."],
         {"Apple Inc.": "the iPhone, the Mac, the iPad and services such as iCloud",
          "Microsoft": "the Windows operating system, Office software and Azure cloud services",
          "Samsung Electronics": "Galaxy phones, televisions, memory chips and home appliances"}),
    Attr(["Where is {e} headquartered?", "Where are the headquarters of {e}?"],
         ["{e} is headquartered in {v}.", "Its head office is in {v}."],
         {"Apple Inc.": "Cupertino, California", "Microsoft": "Redmond, Washington", "Samsung Electronics": "Suwon, South Korea"},
         ["The headquarters of {e} were expanded during the last decade."]),
]))

CEO_SINCE = {"Apple Inc.": "2011", "Microsoft": "2014", "Samsung Electronics": "2022"}


def fill(template: str, subject: str, value: str) -> str:
    text = template.format(e=subject, v=value, y=CEO_SINCE.get(subject, ""))
    return text[0].upper() + text[1:]


def document(family: Family, subject: str, rng: random.Random, drop: int | None, mention: bool) -> tuple[str, str]:
    """Two passages about `subject`: (the one stating attribute `drop`, the other)."""
    sentences = []
    for index, attr in enumerate(family.attrs):
        if subject not in attr.values or (index == drop and not mention):
            continue
        if index == drop:
            if attr.mentions:
                sentences.append((index, fill(rng.choice(attr.mentions), subject, "")))
            continue
        template = rng.choice(attr.statements)
        # later sentences often refer back with a pronoun, as documents do
        if rng.random() < 0.3 and template.startswith("The {e} ") and family.pronoun:
            template = f"{family.pronoun} " + template[len("The {e} "):]
        sentences.append((index, fill(template, subject, attr.values[subject])))
    rng.shuffle(sentences)
    half = len(sentences) // 2
    first = [family.intros[subject]] + [s for _, s in sentences[:half]]
    second = [s for _, s in sentences[half:]]
    return " ".join(first), " ".join(second)


def rows() -> list[dict]:
    rng = random.Random(20261204)
    out: list[dict] = []
    for f_index, family in enumerate(F):
        neighbours = [g for g in F if g.domain == family.domain and g is not family] or [F[(f_index + 1) % len(F)]]
        for subject in family.intros:
            siblings = [s for s in family.intros if s != subject]
            for a_index, attr in enumerate(family.attrs):
                if subject not in attr.values:
                    continue
                qid = f"en{f_index:02d}{list(family.intros).index(subject)}{a_index}"
                query = rng.choice(attr.questions).format(e=subject)
                query = query[0].upper() + query[1:]
                value = attr.values[subject]
                # the passage holding the answer is whichever half the shuffle put it in
                pos_a, pos_b = document(family, subject, random.Random(f"{qid}+"), None, False)
                answer_sentence_in = [p for p in (pos_a, pos_b) if value in p]
                neg_a, neg_b = document(family, subject, random.Random(f"{qid}-"), a_index, rng.random() < 0.6)
                sibling_docs = [document(family, s, random.Random(f"{qid}{s}"), None, False) for s in siblings]
                # the sibling passage that states the same attribute (for another subject)
                sibling_same = [next(p for p in pair if attr.values.get(s, "\0") in p) if attr.values.get(s) else pair[0]
                                for s, pair in zip(siblings, sibling_docs)]
                other = rng.choice(neighbours)
                other_subject = rng.choice(list(other.intros))
                other_doc = rng.choice(document(other, other_subject, random.Random(f"{qid}o"), None, False))
                # (title, text): a chunk carries its document's title, as the knowledge base stores it
                pos_docs = [(subject, answer_sentence_in[0]), (subject, pos_b if answer_sentence_in[0] == pos_a else pos_a),
                            (siblings[0], sibling_same[0]), (siblings[1], sibling_same[1]), (other_subject, other_doc)]
                neg_docs = [(subject, neg_a), (subject, neg_b), *pos_docs[2:]]
                rng.shuffle(pos_docs)
                rng.shuffle(neg_docs)
                neg_docs = [d for d in neg_docs if d[1]]
                for suffix, docs, answers in (("pos", pos_docs, [value]), ("neg", neg_docs, [])):
                    out.append({"id": f"{qid}-{suffix}", "query": query, "answers": answers,
                                "docs": [text for _, text in docs], "titles": [title for title, _ in docs],
                                "answerable": suffix == "pos", "domain": family.domain})
    return out


if __name__ == "__main__":
    data = rows()
    OUT.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in data), encoding="utf-8")
    print(f"{len(data)} rows, {len(data) // 2} questions -> {OUT}")
